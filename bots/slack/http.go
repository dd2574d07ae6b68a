package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	slackapi "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
)

// Limits of http mode. Slack sends each request whole and must be answered
// within 3 seconds; anything slower or larger is not Slack.
const (
	// MaxRequestBody is the largest request body http mode reads; a
	// larger declared Content-Length is refused with 413 before any of it
	// is read. Slack's largest requests are events carrying a message: up
	// to 40,000 characters, sent twice (as text and again in rich_text
	// blocks), at most 6 bytes a character when JSON-escaped as \uXXXX:
	// 480,000 bytes, plus an envelope of a few kilobytes. A slash command's
	// form-encoded text (at most 12 bytes a character) and a button press
	// (a payload naming one of Easel's own short messages) are smaller.
	MaxRequestBody = 512 << 10
	// bodyBudgetBytes bounds the memory of the requests being read and
	// handled at once (see bodyBudget): 15 bodies of the largest size, or
	// about 400 of the few kilobytes Slack usually sends, far more than
	// Slack sends one app at once. Under a flood it is, doubled by the
	// garbage collector, most of what the process holds (bench's
	// TestSlackHTTPFlood measures it).
	bodyBudgetBytes = 8 << 20
	// requestCost is what a request costs beyond its body, counted against
	// the budget: its goroutine, the server's buffers and parsed headers.
	requestCost = 16 << 10
	// bodyTimeout bounds the reading of a body once its headers are in,
	// leaving Easel a second of Slack's three to answer.
	bodyTimeout = 2 * time.Second
	// maxHeaderBytes bounds a request's headers; Slack's are about 1 KB,
	// and a proxy in front adds a few more.
	maxHeaderBytes = 16 << 10
)

// serveHTTP serves the Events API endpoints on ln until ctx ends.
func (b *Bot) serveHTTP(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           b.handler(),
		MaxHeaderBytes:    maxHeaderBytes,
		ReadHeaderTimeout: 5 * time.Second,
		// ReadTimeout backs up bodyTimeout on paths that read no body
		// (the server then reads up to 256 KB of it itself).
		ReadTimeout: 10 * time.Second,
		IdleTimeout: 30 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	b.connected.Store(true)
	defer b.connected.Store(false)
	b.log.Info("slack: serving the Events API", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// handler routes Slack's three request URLs. Each request's signature is
// verified before its body is parsed; each is answered at once and its
// work queued.
func (b *Bot) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /slack/events", b.verified(b.httpEvent))
	mux.Handle("POST /slack/commands", b.verified(b.httpCommand))
	mux.Handle("POST /slack/interactivity", b.verified(b.httpInteraction))
	return mux
}

// verified passes a request's body on only if it carries a valid v0
// signature made with the signing secret within the last five minutes;
// otherwise it answers 401 and nothing is parsed. The signature headers are
// checked before any of the body is read: a request without them, with a
// malformed signature or with a stale timestamp costs no more than its
// headers. A body is read within the body budget and bodyTimeout (see
// readBody).
func (b *Bot) verified(next func(http.ResponseWriter, *http.Request, []byte)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived := time.Now()
		sv, err := slackapi.NewSecretsVerifier(r.Header, b.cfg.SigningSecret)
		if err != nil {
			b.badSignature(w, r, err)
			return
		}
		body, release, status := b.readBody(w, r)
		if status != 0 {
			refuse(w, status)
			return
		}
		defer release()
		_, _ = sv.Write(body)
		if err := sv.Ensure(); err != nil {
			b.badSignature(w, r, err)
			return
		}
		next(w, r, body)
		b.metrics.Acked(time.Since(arrived))
	})
}

// badSignature refuses a request whose signature is missing, malformed,
// stale or wrong, and logs it at a bounded rate.
func (b *Bot) badSignature(w http.ResponseWriter, r *http.Request, err error) {
	b.rejects.refused(r.URL.Path, err)
	refuse(w, http.StatusUnauthorized)
}

// readBody reads r's body into a buffer of its exact size (MaxRequestBody
// and one byte when its size is not declared), holding its size in the body
// budget until release is called, with a read deadline b.bodyTimeout from now.
// It returns a status to refuse the request with instead: 413 for a body
// over MaxRequestBody (at once when its Content-Length says so), 408 for one
// that did not arrive in time or was cut short to make room for newer
// requests, 503 when the budget had no room before the deadline.
func (b *Bot) readBody(w http.ResponseWriter, r *http.Request) (body []byte, release func(), status int) {
	size := r.ContentLength
	switch {
	case size > MaxRequestBody:
		return nil, nil, http.StatusRequestEntityTooLarge
	case size == 0:
		return nil, func() {}, 0
	case size < 0: // chunked: read one byte more than allowed, to tell
		size = MaxRequestBody + 1
	}
	deadline := time.Now().Add(b.bodyTimeout)
	rc := http.NewResponseController(w)
	cut := func() {}
	if rc.SetReadDeadline(deadline) == nil {
		cut = func() { _ = rc.SetReadDeadline(time.Unix(1, 0)) } // long past: the read fails at once
	}
	ctx, cancel := context.WithDeadline(r.Context(), deadline)
	defer cancel()
	h, err := b.bodies.hold(ctx, size+requestCost, cut)
	if err != nil {
		return nil, nil, http.StatusServiceUnavailable
	}
	release = func() { b.bodies.release(h) }
	body = make([]byte, size)
	n, err := io.ReadFull(r.Body, body)
	b.bodies.read(h)
	switch {
	case err == nil && r.ContentLength < 0:
		status = http.StatusRequestEntityTooLarge
	case err == nil:
	case r.ContentLength < 0 && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)):
		body = body[:n]
	case errors.Is(err, os.ErrDeadlineExceeded):
		status = http.StatusRequestTimeout
	default: // cut off by the sender
		status = http.StatusBadRequest
	}
	if status != 0 {
		release()
		return nil, nil, status
	}
	return body, release, 0
}

// refuse answers status and closes the connection without reading any
// more of the request. Left to the server, an unread body would be read up
// to 256 KB, or the connection's goroutine would wait half a second before
// closing it (so that a client still sending sees the answer before the
// reset), which under a flood of new connections adds up. Instead refuse
// takes the connection over, answers, shuts its sending side and closes it
// closeDelay later from a timer.
func refuse(w http.ResponseWriter, status int) {
	text := strings.ToLower(http.StatusText(status))
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil { // not the standard server: answer through it
		w.Header().Set("Connection", "close")
		http.Error(w, text, status)
		return
	}
	text += "\n"
	_ = conn.SetWriteDeadline(time.Now().Add(closeDelay))
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n\r\n%s",
		status, http.StatusText(status), len(text), text)
	_ = buf.Flush()
	if c, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = c.CloseWrite()
	}
	time.AfterFunc(closeDelay, func() { _ = conn.Close() })
}

// closeDelay is how long a refused connection stays open after its answer,
// as net/http's own: time for the client to read the answer.
const closeDelay = 500 * time.Millisecond

// httpEvent answers an Events API request: the url_verification challenge,
// or 200 at once for an event, whose work is queued.
func (b *Bot) httpEvent(w http.ResponseWriter, r *http.Request, body []byte) {
	ev, err := slackevents.ParseEvent(json.RawMessage(body), slackevents.OptionNoVerifyToken())
	if err != nil {
		// Verified but not understood (an event type slack-go does not
		// know): answer 200 so Slack does not retry it.
		b.log.Debug("slack: unparsed event", "err", err)
		w.WriteHeader(http.StatusOK)
		return
	}
	if ch, ok := ev.Data.(*slackevents.EventsAPIURLVerificationEvent); ok {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"challenge": ch.Challenge})
		return
	}
	retry, _ := strconv.Atoi(r.Header.Get("X-Slack-Retry-Num"))
	b.answer(w, b.accept(r.Context(), kindEvent, body, retry))
}

// answer acknowledges a delivery with 200, or with 503 when it could not be
// recorded, so that Slack retries it.
func (b *Bot) answer(w http.ResponseWriter, accepted bool) {
	if !accepted {
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// httpCommand answers a slash command with an empty 200 and queues it.
func (b *Bot) httpCommand(w http.ResponseWriter, r *http.Request, body []byte) {
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	cmd, err := slackapi.SlashCommandParse(r)
	if err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	payload, err := json.Marshal(cmd)
	if err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	b.answer(w, b.accept(r.Context(), kindCommand, payload, 0))
}

// httpInteraction answers a button press with an empty 200 and queues it.
func (b *Bot) httpInteraction(w http.ResponseWriter, r *http.Request, body []byte) {
	form, err := url.ParseQuery(string(body))
	var cb slackapi.InteractionCallback
	if err == nil {
		err = json.Unmarshal([]byte(form.Get("payload")), &cb)
	}
	if err != nil {
		http.Error(w, "bad payload", http.StatusBadRequest)
		return
	}
	b.answer(w, b.accept(r.Context(), kindInteraction, json.RawMessage(form.Get("payload")), 0))
}
