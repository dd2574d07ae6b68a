// Package web is Easel's HTTP server: one listener for the operations
// endpoints (health and readiness) and for the handlers other packages
// mount on it.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Bounds of a request, so that slow or idle clients cannot hold the
// server's connections.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
	shutdownGrace     = 5 * time.Second
)

// Server serves the handlers mounted on it. Mount everything before Run.
type Server struct {
	listen string
	log    *slog.Logger
	mux    *http.ServeMux
	ready  readiness
}

// New returns a server that will listen on listen (host:port), serving
// GET /healthz: 200 while the process runs, for liveness probes; and GET
// /readyz: 200 while every check added with AddCheck passes, 503 when one
// fails, for readiness probes and load balancers.
func New(listen string, log *slog.Logger) *Server {
	s := &Server{listen: listen, log: log, mux: http.NewServeMux()}
	s.Handle("GET /healthz", http.HandlerFunc(healthz))
	s.Handle("GET /readyz", http.HandlerFunc(s.readyz))
	return s
}

// healthz answers that the process is alive: it serves requests.
func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ok\n"))
}

// Handle mounts h on pattern, in net/http.ServeMux's syntax, such as
// "GET /healthz".
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Handler returns the server's routes, for a test server.
func (s *Server) Handler() http.Handler { return s.mux }

// Run listens and serves until ctx ends, then lets requests in progress
// finish for a few seconds. It returns an error if it cannot listen.
func (s *Server) Run(ctx context.Context) error {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", s.listen)
	if err != nil {
		return fmt.Errorf("web: listen on %s (web.listen): %w", s.listen, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends, as Run does.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	s.log.Info("web server listening", "addr", ln.Addr().String())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("web: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("web: serve: %w", err)
	}
	return nil
}
