package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	slackapi "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
)

// maxBody bounds a request body in http mode; Slack's payloads are far
// smaller.
const maxBody = 1 << 20

// serveHTTP serves the Events API endpoints on ln until ctx ends.
func (b *Bot) serveHTTP(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: b.handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
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

// verified reads a request body of at most maxBody bytes and passes it on
// only if it carries a valid v0 signature made with the signing secret
// within the last five minutes; otherwise it answers 401 and nothing is
// parsed.
func (b *Bot) verified(next func(http.ResponseWriter, *http.Request, []byte)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
			return
		}
		sv, err := slackapi.NewSecretsVerifier(r.Header, b.cfg.SigningSecret)
		if err == nil {
			_, _ = sv.Write(body)
			err = sv.Ensure()
		}
		if err != nil {
			b.log.Warn("slack: request with a bad signature rejected", "path", r.URL.Path, "err", err)
			http.Error(w, "invalid signature", http.StatusUnauthorized)
			return
		}
		next(w, r, body)
	})
}

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
