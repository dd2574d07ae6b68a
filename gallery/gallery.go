// Package gallery is Easel's read-only web gallery: the sessions, newest
// first and searchable, each session's version tree with its images, and
// the usage report, as server-rendered pages without scripts.
//
// There are no accounts: every page needs a link signed with HMAC-SHA256
// (see Linker) that names its scope, the whole gallery or one session, and
// its expiry. A valid link sets a cookie of the same scope, so that the
// page's images and links work; anything else gets the same 403 page,
// which says nothing about what exists.
package gallery

import (
	"bytes"
	"compress/gzip"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/safetext"
	"github.com/easel-bot/easel/core/usage"
)

// Store is the session store as the gallery reads it.
type Store interface {
	// Sessions returns every session.
	Sessions(ctx context.Context) ([]*core.Session, error)
	// Session returns the session with id, or a NotFound *core.Error.
	Session(ctx context.Context, id string) (*core.Session, error)
	usage.Counters
}

// Images reads image bytes by reference, checked against their hash.
type Images interface {
	Get(ctx context.Context, ref core.ImageRef) (core.Image, error)
}

// Config is what a Gallery needs besides its stores.
type Config struct {
	// Key signs and checks the links: at least MinKeyBytes.
	Key []byte
	// SecureCookies marks the cookies Secure: set it when people reach the
	// server over HTTPS (web.public_url starts with https://).
	SecureCookies bool
	// BasePath is the path a proxy puts before /gallery/, as people reach
	// it (web.public_url's path, such as "/easel"), for the cookies' Path;
	// "" for none.
	BasePath string
	// Limits and Admins are the quotas and admins the usage page shows.
	Limits usage.Limits
	Admins []string
	// Log records what went wrong reading the stores.
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Gallery serves the gallery's pages and images.
type Gallery struct {
	cfg    Config
	store  Store
	images Images
	now    func() time.Time
}

// New returns a gallery of store's sessions and images's bytes.
func New(cfg Config, store Store, images Images) (*Gallery, error) {
	if len(cfg.Key) < MinKeyBytes {
		return nil, fmt.Errorf("gallery: the signing key has %d bytes, want at least %d", len(cfg.Key), MinKeyBytes)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	cfg.BasePath = strings.TrimSuffix(cfg.BasePath, "/")
	g := &Gallery{cfg: cfg, store: store, images: images, now: cfg.Now}
	if g.now == nil {
		g.now = time.Now
	}
	return g, nil
}

// Mount mounts the gallery's routes, all under /gallery/, on mux (a
// *web.Server or an *http.ServeMux).
func (g *Gallery) Mount(mux interface{ Handle(string, http.Handler) }) {
	mux.Handle("GET /gallery/{$}", g.page(g.all(g.list)))
	mux.Handle("GET /gallery/usage", g.page(g.all(g.usage)))
	mux.Handle("GET /gallery/s/{id}", g.page(g.session(g.sessionPage)))
	mux.Handle("GET /gallery/s/{id}/img/{hash}", g.page(g.session(g.image)))
	mux.Handle("GET /gallery/style.css", g.page(http.HandlerFunc(style)))
	mux.Handle("/gallery/", g.page(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.fail(w, r, http.StatusNotFound) })))
}

// contentSecurityPolicy allows the page's own images, its style sheet and
// its forms, and nothing else: no scripts, no frames, no other origin.
const contentSecurityPolicy = "default-src 'none'; img-src 'self'; style-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// page sets the headers every answer of the gallery carries.
func (g *Gallery) page(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("Referrer-Policy", "no-referrer") // links carry signatures
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// Cookie names: one for the whole gallery, one (per session path) for a
// session.
const (
	cookieAll     = "easel_gallery"
	cookieSession = "easel_session"
)

// all lets through only requests signed for the whole gallery.
func (g *Gallery) all(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.allowed(w, r, scopeAll, cookieAll, "/gallery/") {
			g.fail(w, r, http.StatusForbidden)
			return
		}
		h(w, r)
	})
}

// session lets through requests signed for the whole gallery or for the
// session named in the path; a malformed id is refused as unsigned.
func (g *Gallery) session(h func(http.ResponseWriter, *http.Request, scope)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		switch {
		case g.allowed(w, r, scopeAll, cookieAll, "/gallery/"):
			h(w, r, scope{all: true})
		case validID(id) && g.allowed(w, r, scopeSession+id, cookieSession, "/gallery/s/"+id):
			h(w, r, scope{})
		default:
			g.fail(w, r, http.StatusForbidden)
		}
	})
}

// scope is what the request may see.
type scope struct{ all bool }

// allowed reports whether r carries a valid signature of scope: in its
// query (exp and sig, then a cookie named name for path is set to carry it
// on) or in such a cookie.
func (g *Gallery) allowed(w http.ResponseWriter, r *http.Request, scope, name, path string) bool {
	now := g.now()
	q := r.URL.Query()
	if exp, ok := verify(g.cfg.Key, scope, q.Get("exp"), q.Get("sig"), now); ok {
		http.SetCookie(w, &http.Cookie{
			Name:     name,
			Value:    q.Get("exp") + tokenSep + q.Get("sig"),
			Path:     g.cfg.BasePath + path,
			Expires:  exp,
			MaxAge:   int(exp.Sub(now).Seconds()) + 1,
			Secure:   g.cfg.SecureCookies,
			HttpOnly: true,
			SameSite: http.SameSiteStrictMode,
		})
		return true
	}
	for _, c := range r.CookiesNamed(name) {
		if len(c.Value) > maxTokenLen {
			continue
		}
		exp, sig, _ := strings.Cut(c.Value, tokenSep)
		if _, ok := verify(g.cfg.Key, scope, exp, sig, now); ok {
			return true
		}
	}
	return false
}

// failures are the titles and texts of the error pages. A refused
// request's page is the same whatever was asked for.
var failures = map[int][2]string{
	http.StatusForbidden:           {"Link not valid", "This link is not valid: it may have expired or been changed. Ask for a new one."},
	http.StatusNotFound:            {"Not found", "There is nothing here."},
	http.StatusInternalServerError: {"Something went wrong", "The gallery could not read its data. Try again later."},
}

// fail answers with the error page of status.
func (g *Gallery) fail(w http.ResponseWriter, r *http.Request, status int) {
	f := failures[status]
	g.render(w, r, status, "error.html", errorView{Root: root(r.URL.Path), Title: f[0], Text: f[1]})
}

// errorView is an error page.
type errorView struct{ Root, Title, Text string }

// root returns the relative way from the page at path up to /gallery/,
// such as "../" from /gallery/s/ID, so that links work under any prefix a
// proxy puts before /gallery/.
func root(path string) string {
	depth := strings.Count(strings.TrimPrefix(path, "/gallery/"), "/")
	return strings.Repeat("../", min(depth, 8))
}

// storeFailed answers a store's error: 404 for what does not exist, 500
// (logged) for the rest.
func (g *Gallery) storeFailed(w http.ResponseWriter, r *http.Request, err error) {
	if core.KindOf(err) == core.NotFound {
		g.fail(w, r, http.StatusNotFound)
		return
	}
	if !errors.Is(err, context.Canceled) {
		g.cfg.Log.Error("gallery: reading the store failed", "path", r.URL.Path, "err", err)
	}
	g.fail(w, r, http.StatusInternalServerError)
}

//go:embed templates
var files embed.FS

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	// meta is what the top of every page needs: its title and the way up
	// to /gallery/.
	"meta": func(title, root string) struct{ Title, Root string } {
		return struct{ Title, Root string }{title, root}
	},
	// text is what a user typed or a model wrote, without the control and
	// bidirectional formatting characters that could disguise it; the
	// template escapes its HTML.
	"text": safetext.Chat,
	"iso":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"cost": core.FormatCost,
}

var pages = template.Must(template.New("").Funcs(funcs).ParseFS(files, "templates/*.html"))

// render writes the page named name with data, with status: whole, or
// a 500 page if it cannot be made.
func (g *Gallery) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, name, data); err != nil {
		g.cfg.Log.Error("gallery: making a page failed", "page", name, "err", err)
		if name == "error.html" {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		g.fail(w, r, http.StatusInternalServerError)
		return
	}
	page := b.Bytes()
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Add("Vary", "Accept-Encoding")
	if acceptsGzip(r) {
		page = gzipped(page)
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Length", strconv.Itoa(len(page)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(page)
	}
}

// acceptsGzip reports whether r's Accept-Encoding takes gzip. A page holds
// no secret (the signature stays in the URL and the cookie), so compressing
// it beside what a visitor typed reveals nothing.
func acceptsGzip(r *http.Request) bool {
	for _, enc := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(enc, ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") {
			q := strings.ReplaceAll(params, " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}

// gzipWriters are reused: each holds about half a megabyte of state.
var gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

// gzipped returns data compressed with gzip.
func gzipped(data []byte) []byte {
	var b bytes.Buffer
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(&b)
	_, _ = zw.Write(data) // writing to a bytes.Buffer cannot fail
	_ = zw.Close()
	return b.Bytes()
}

// style serves the style sheet, the same for everyone.
func style(w http.ResponseWriter, r *http.Request) {
	css, _ := files.ReadFile("templates/style.css")
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(css)
}

// pageURL returns path with query q, for links between pages.
func pageURL(path string, q url.Values) string {
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}
