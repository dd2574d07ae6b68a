package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/discord/discordtest"
	"github.com/easel-bot/easel/bots/slack/slacktest"
	"github.com/easel-bot/easel/config"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/metrics/metricstest"
	"github.com/easel-bot/easel/storage"
)

// TestRunOpsEndpoints starts `easel run` with both platforms, JSON logs
// and a web server, and checks that /readyz says when it is ready and when
// a platform is cut off, and that /metrics moves as turns run on each
// platform, in an exposition Prometheus's own parser reads.
func TestRunOpsEndpoints(t *testing.T) {
	sl := slacktest.NewServer(t)
	dc := discordtest.NewServer(t)
	cfgFile := writeFile(t, fmt.Sprintf(`[slack]
enabled = true
api_url = %q

[discord]
enabled = true
api_url = %q
guilds = [%q]

[web]
listen = "127.0.0.1:0"

[log]
format = "json"
`, sl.APIURL(), dc.URL(), dc.Guild))
	environ := map[string]string{"SLACK_BOT_TOKEN": sl.BotToken, "SLACK_APP_TOKEN": sl.AppToken, "DISCORD_BOT_TOKEN": dc.Token}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{b: &bytes.Buffer{}}
	done := make(chan int)
	go func() {
		e := &env{stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: logs, getenv: func(k string) string { return environ[k] }}
		done <- run(ctx, []string{"run", "-config", cfgFile, "-data", t.TempDir()}, e)
	}()
	base := "http://" + waitLogged(t, logs, "web server listening", "addr")

	waitStatus(t, base+"/readyz", http.StatusOK)
	before := metricstest.Scrape(t, base+"/metrics")
	if n := before.Value("easel_turns_total"); n != 0 {
		t.Errorf("easel_turns_total = %v before any turn", n)
	}

	sl.Send(t, sl.SlashCommand("UANA", "C1", "a red fox"))
	dc.Wait(t, "/imagine registered", imagineRegistered(dc))
	ic := dc.Command(t, dc.Alice, dc.Channel, "imagine", discordtest.Option{Name: "prompt", Value: "a blue whale"})
	dc.Wait(t, "the deferred response", func() bool { return dc.GetInteraction(ic.ID).AckType != 0 })
	sl.WaitFor(t, "the Slack result", func() bool {
		ups := sl.Uploads()
		return len(ups) == 2 && ups[1].Completed
	})
	var f metricstest.Families
	dc.Wait(t, "both turns counted", func() bool {
		f = metricstest.Scrape(t, base+"/metrics")
		return f.Value("easel_turns_total", "kind", "generate", "status", "done", "provider", "preview") == 2
	})
	for _, c := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"easel_provider_duration_seconds", []string{"provider", "preview", "outcome", "ok"}, 2},
		{"easel_provider_first_partial_seconds", []string{"provider", "preview"}, 1},
		{"easel_platform_api_requests_total", []string{"platform", "slack"}, 1},
		{"easel_platform_api_requests_total", []string{"platform", "discord"}, 1},
		{"easel_platform_uploaded_bytes_total", []string{"platform", "slack"}, 1000},
		{"easel_platform_uploaded_bytes_total", []string{"platform", "discord"}, 1000},
		{"easel_platform_ack_duration_seconds", []string{"platform", "slack"}, 1},
		{"easel_platform_ack_duration_seconds", []string{"platform", "discord"}, 1},
		{"go_goroutines", nil, 1},
	} {
		if got := f.Value(c.name, c.labels...); got < c.min {
			t.Errorf("%s%v = %v, want at least %v", c.name, c.labels, got, c.min)
		}
	}
	if f.Type("easel_turns_in_flight") != "gauge" || f.Type("easel_turns_queued") != "gauge" {
		t.Errorf("turn gauges: %q %q", f.Type("easel_turns_in_flight"), f.Type("easel_turns_queued"))
	}

	dc.Close() // Discord goes away and stays away
	body := waitStatus(t, base+"/readyz", http.StatusServiceUnavailable)
	for _, want := range []string{"[+]store ok\n", "[+]slack ok\n", "[-]discord failed: shards [0] of [0] not connected\n", "[+]provider ok\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("/readyz with Discord gone lacks %q:\n%s", want, body)
		}
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("easel run exited %d:\n%s", code, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("easel run did not stop after its context ended")
	}
	for _, secret := range []string{sl.BotToken, sl.AppToken, dc.Token} {
		if strings.Contains(logs.String(), secret) || strings.Contains(body, secret) {
			t.Errorf("a token appears in the logs or the readiness body")
		}
	}
	checkJSONLines(t, logs.String())
}

// waitLogged waits for a log line (JSON) with message msg and returns its
// attribute key.
func waitLogged(t *testing.T, logs *syncBuffer, msg, key string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == msg {
				if v, ok := line[key].(string); ok {
					return v
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %q logged:\n%s", msg, logs.String())
	return ""
}

// checkJSONLines checks that every line of logs is a JSON object with a
// time, a level and a message.
func checkJSONLines(t *testing.T, logs string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Errorf("log line %d is not JSON: %v: %q", n+1, err, sc.Text())
			continue
		}
		if line["time"] == nil || line["level"] == nil || line["msg"] == nil {
			t.Errorf("log line %d lacks time, level or msg: %q", n+1, sc.Text())
		}
		n++
	}
	if n == 0 {
		t.Error("nothing logged")
	}
}

// waitStatus waits until url answers status, and returns the body.
func waitStatus(t *testing.T, url string, status int) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = fmt.Sprintf("%d %s", resp.StatusCode, body)
			if resp.StatusCode == status {
				return string(body)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("GET %s never answered %d; last: %s", url, status, last)
	return ""
}

// failingStore is a session store whose reads fail with err.
type failingStore struct {
	sessionStore
	err error
}

func (s failingStore) SessionByThread(context.Context, string, string) (*core.Session, error) {
	return nil, s.err
}

// TestReadyzStore: /readyz fails while the store cannot be read (closed,
// or failing with an error that names its credentials), saying so without
// the error's text, which goes to the log.
func TestReadyzStore(t *testing.T) {
	db, err := storage.Open(context.Background(), t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cfg := config.DefaultConfig()
	cfg.Web.Listen = "127.0.0.1:0"
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&syncBuffer{b: &logs}, nil))
	readyz := func(store sessionStore) (int, string) {
		t.Helper()
		srv := httptest.NewServer(newWeb(cfg, &app{db: store}, nil, log).Handler())
		defer srv.Close()
		resp, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	if status, body := readyz(db); status != http.StatusOK || body != "[+]store ok\n[+]provider ok\nreadyz check passed\n" {
		t.Errorf("open store: %d %q", status, body)
	}
	secret := errors.New("connect to postgres://easel:hunter2@db.internal/easel: connection refused")
	status, body := readyz(failingStore{sessionStore: db, err: secret})
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "[-]store failed: a read failed (the log says why)\n") || strings.Contains(body, "hunter2") {
		t.Errorf("failing store: %d %q", status, body)
	}
	if !strings.Contains(logs.String(), "connection refused") {
		t.Errorf("the store's error is not logged:\n%s", logs.String())
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if status, body := readyz(db); status != http.StatusServiceUnavailable || !strings.Contains(body, "[-]store failed: ") {
		t.Errorf("closed store: %d %q", status, body)
	}
}

// TestReadyzProvider: the provider check names what is missing, never a
// key.
func TestReadyzProvider(t *testing.T) {
	cfg := config.DefaultConfig()
	cfg.Provider.Default = config.ProviderOpenAI
	if err := providerCheck(cfg)(context.Background()); err == nil || err.Error() != "provider openai has no API key (OPENAI_API_KEY)" {
		t.Errorf("openai without a key: %v", err)
	}
	cfg.Secrets.OpenAIKey = "sk-test-secret"
	if err := providerCheck(cfg)(context.Background()); err != nil {
		t.Errorf("openai with a key: %v", err)
	}
	cfg.Provider.Default = "dall-e-9"
	if err := providerCheck(cfg)(context.Background()); err == nil || strings.Contains(err.Error(), "sk-test") {
		t.Errorf("an unknown provider: %v", err)
	}
}
