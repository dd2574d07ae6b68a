package discordtest

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Call is one request as the fake received it.
type Call struct {
	Method string
	Path   string // the request URI, escaped, with its query
	// Route is the method and path pattern, such as
	// "POST /channels/{channel_id}/messages".
	Route string
	// Params holds the route's path parameters, unescaped.
	Params map[string]string
	At     time.Time // when the request arrived
	Auth   string    // the Authorization header
	Query  url.Values
	// Body is the JSON object body, or the payload_json part of a
	// multipart body; List is a JSON array body (a bulk command overwrite).
	Body map[string]any
	List []map[string]any
	// Files are the files[n] parts of a multipart body.
	Files  []File
	Status int    // the status answered
	Error  string // the message of the error answered, if any
}

// File is one uploaded file of a multipart request.
type File struct {
	Field, Name, ContentType string
	Data                     []byte
}

// rateLimit is a 429 waiting for the next request on its route.
type rateLimit struct {
	route      string
	retryAfter time.Duration
	global     bool
}

// apiError is Discord's error object: an HTTP status, a JSON error code and
// a message.
type apiError struct {
	status, code int
	message      string
}

func errorf(status, code int, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// result is what a route handler decided: a status and body, or an error,
// and the gateway dispatches its change causes.
type result struct {
	status int
	body   any
	err    *apiError
	events []event
}

func ok(status int, body any, events ...event) result {
	return result{status: status, body: body, events: events}
}

func fail(err *apiError) result { return result{err: err} }

// handler is a route's logic. It runs with s.mu held and must not block.
type handler func(c *Call) result

// maxBody bounds request bodies, beyond any upload Discord accepts.
const maxBody = 110 << 20

var paramName = regexp.MustCompile(`\{([a-z_]+)\}`)

// handle registers h for route ("METHOD /path/{param}") under /api/v9 and
// /api/v10. botAuth requires the bot token in the Authorization header;
// interaction callbacks and webhooks are authorised by their token instead.
func (s *Server) handle(mux *http.ServeMux, route string, botAuth bool, h handler) {
	method, path, _ := strings.Cut(route, " ")
	names := paramName.FindAllStringSubmatch(path, -1)
	mux.HandleFunc(method+" /api/{version}"+path, func(w http.ResponseWriter, r *http.Request) {
		c := Call{Method: r.Method, Path: r.URL.RequestURI(), Route: route, At: time.Now(),
			Auth: r.Header.Get("Authorization"), Params: map[string]string{}, Query: r.URL.Query()}
		for _, n := range names {
			c.Params[n[1]] = r.PathValue(n[1])
		}
		res := s.serve(r, &c, botAuth, h)
		s.mu.Lock()
		after := s.after
		s.mu.Unlock()
		if after != nil {
			after(c)
		}
		s.respond(w, &c, res)
		if f, ok := w.(http.Flusher); ok {
			f.Flush() // the client has its answer before the gateway hears of it
		}
		for _, e := range res.events {
			s.gw.dispatch(e)
		}
	})
}

// serve checks a request, parses its body and runs its handler, recording
// the call.
func (s *Server) serve(r *http.Request, c *Call, botAuth bool, h handler) result {
	var res result
	switch v := r.PathValue("version"); {
	case v != "v9" && v != "v10":
		res = fail(errorf(http.StatusNotFound, 0, "404: Not Found (API version %q)", v))
	case botAuth && c.Auth != "Bot "+s.Token:
		res = fail(errorf(http.StatusUnauthorized, 0, "401: Unauthorized"))
	default:
		if err := parseBody(r, c); err != nil {
			res = fail(err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if res.err == nil {
		if lim, ok := s.takeLimit(c.Route); ok {
			res = result{status: http.StatusTooManyRequests, body: lim}
		} else {
			res = h(c)
		}
	}
	c.Status = res.status
	if res.err != nil {
		c.Status, c.Error = res.err.status, res.err.message
	}
	s.calls = append(s.calls, *c)
	s.notify()
	return res
}

// takeLimit removes and returns the first 429 waiting for route; s.mu must
// be held.
func (s *Server) takeLimit(route string) (rateLimit, bool) {
	for i, l := range s.limits {
		if l.route == route {
			s.limits = append(s.limits[:i], s.limits[i+1:]...)
			return l, true
		}
	}
	return rateLimit{}, false
}

// respond writes res with Discord's rate limit headers.
func (s *Server) respond(w http.ResponseWriter, c *Call, res result) {
	h := w.Header()
	h.Set("X-RateLimit-Bucket", bucket(c.Route))
	if lim, ok := res.body.(rateLimit); ok {
		secs := lim.retryAfter.Seconds()
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(secs))))
		h.Set("X-RateLimit-Limit", "5")
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Reset", strconv.FormatFloat(float64(time.Now().Add(lim.retryAfter).UnixMilli())/1000, 'f', 3, 64))
		h.Set("X-RateLimit-Reset-After", strconv.FormatFloat(secs, 'f', 3, 64))
		h.Set("X-RateLimit-Scope", "user")
		if lim.global {
			h.Set("X-RateLimit-Global", "true")
			h.Set("X-RateLimit-Scope", "global")
		}
		writeJSON(w, http.StatusTooManyRequests, map[string]any{
			"message": "You are being rate limited.", "retry_after": secs, "global": lim.global,
		})
		return
	}
	h.Set("X-RateLimit-Limit", "5")
	h.Set("X-RateLimit-Remaining", "4")
	h.Set("X-RateLimit-Reset", strconv.FormatFloat(float64(time.Now().Add(time.Second).UnixMilli())/1000, 'f', 3, 64))
	h.Set("X-RateLimit-Reset-After", "1.000")
	switch {
	case res.err != nil:
		writeError(w, res.err.status, res.err.code, res.err.message)
	case res.body == nil:
		w.WriteHeader(http.StatusNoContent)
	default:
		writeJSON(w, res.status, res.body)
	}
}

// bucket returns an opaque bucket id for a route, as Discord names its
// rate limit buckets.
func bucket(route string) string {
	h := fnv.New64a()
	h.Write([]byte(route))
	return strconv.FormatUint(h.Sum64(), 16)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// writeError writes Discord's error object.
func writeError(w http.ResponseWriter, status, code int, message string) {
	writeJSON(w, status, map[string]any{"code": code, "message": message})
}

// parseBody reads a JSON or multipart (payload_json + files[n]) body into c.
func parseBody(r *http.Request, c *Call) *apiError {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return errorf(http.StatusBadRequest, 50109, "The request body contains invalid JSON.")
	}
	body := io.LimitReader(r.Body, maxBody)
	switch mt {
	case "application/json":
		var raw json.RawMessage
		if err := json.NewDecoder(body).Decode(&raw); err != nil {
			return errorf(http.StatusBadRequest, 50109, "The request body contains invalid JSON.")
		}
		if json.Unmarshal(raw, &c.Body) != nil && json.Unmarshal(raw, &c.List) != nil {
			return errorf(http.StatusBadRequest, 50109, "The request body contains invalid JSON.")
		}
		return nil
	case "multipart/form-data":
		return parseMultipart(multipart.NewReader(body, params["boundary"]), c)
	default:
		return errorf(http.StatusUnsupportedMediaType, 0, "unsupported content type %s", mt)
	}
}

var fileField = regexp.MustCompile(`^files\[(\d+)\]$`)

func parseMultipart(mr *multipart.Reader, c *Call) *apiError {
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return errorf(http.StatusBadRequest, 50109, "malformed multipart body: %v", err)
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return errorf(http.StatusBadRequest, 50109, "malformed multipart body: %v", err)
		}
		switch name := p.FormName(); {
		case name == "payload_json":
			if err := json.Unmarshal(data, &c.Body); err != nil {
				return errorf(http.StatusBadRequest, 50109, "The request body contains invalid JSON.")
			}
		case fileField.MatchString(name):
			c.Files = append(c.Files, File{Field: name, Name: p.FileName(), ContentType: p.Header.Get("Content-Type"), Data: data})
		default:
			return errorf(http.StatusBadRequest, 50035, "Invalid Form Body: unexpected part %q", name)
		}
	}
}
