package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/slack/install"
	"github.com/easel-bot/easel/bots/slack/slacktest"
	"github.com/easel-bot/easel/storage"
	"github.com/easel-bot/easel/storage/postgres"
	"github.com/easel-bot/easel/storage/postgres/pgtest"
)

// TestRunSlackOAuth starts `easel run` with no SLACK_BOT_TOKEN but OAuth
// settings, on each storage backend, installs the app into a second
// workspace of the fake through the web server's install page, makes an
// image there with that workspace's token, and checks that neither the
// installed token, the client secret nor the token key reaches the logs,
// the data dir or, sealed, the stored installation.
func TestRunSlackOAuth(t *testing.T) {
	t.Run("bbolt", func(t *testing.T) { testRunSlackOAuth(t, "") })
	t.Run("postgres", func(t *testing.T) { testRunSlackOAuth(t, pgtest.Start(t).DB(t)) })
}

func testRunSlackOAuth(t *testing.T, postgresURL string) {
	srv := slacktest.NewServer(t)
	srv.AddTeam(slacktest.Team{ID: "T2"})
	srv.AddChannel("C2", "T2")
	addr := freeAddr(t)
	conf := fmt.Sprintf("[slack]\nenabled = true\napi_url = %q\n\n[web]\nlisten = %q\npublic_url = %q\n",
		srv.APIURL(), addr, "http://"+addr)
	if postgresURL != "" {
		conf += "\n[storage]\nbackend = \"postgres\"\n"
	}
	cfgFile := writeFile(t, conf)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	b64key := base64.StdEncoding.EncodeToString(key)
	environ := map[string]string{"SLACK_APP_TOKEN": srv.AppToken, "SLACK_CLIENT_ID": srv.ClientID,
		"SLACK_CLIENT_SECRET": srv.ClientSecret, "EASEL_TOKEN_KEY": b64key, "EASEL_POSTGRES_URL": postgresURL}
	data := t.TempDir()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs bytes.Buffer
	done := make(chan int)
	go func() {
		e := &env{stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &syncBuffer{b: &logs}, getenv: func(k string) string { return environ[k] }}
		done <- run(ctx, []string{"run", "-config", cfgFile, "-data", data}, e)
	}()
	srv.Connected(t)

	srv.Approve(slacktest.Approval{Team: "T2", User: "UANA"})
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	var resp *http.Response
	var err error
	for range 100 { // the web server may not listen yet
		if resp, err = browser.Get("http://" + addr + "/slack/install"); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "Easel is installed") {
		t.Fatalf("install: %d %s\n%s", resp.StatusCode, page, logs.String())
	}
	token := srv.TeamToken("T2")

	srv.Send(t, srv.SlashCommand("UANA", "C2", "a red fox"))
	srv.WaitFor(t, "the uploaded result", func() bool {
		ups := srv.Uploads()
		return len(ups) == 2 && ups[1].Completed
	})
	for _, c := range srv.Calls("") {
		if c.Params["channel"] == "C2" && (c.Token != token || c.Error != "") {
			t.Errorf("%s in C2: T2's token %v, error %q", c.Method, c.Token == token, c.Error)
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

	secrets := map[string]string{"the installed token": token, "the client secret": srv.ClientSecret, "the token key": b64key, "the app token": srv.AppToken}
	for name, s := range secrets {
		if strings.Contains(logs.String(), s) {
			t.Errorf("%s appears in the logs", name)
		}
	}
	scanned := 0
	err = filepath.WalkDir(data, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		scanned++
		for name, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s appears in %s", name, path)
			}
		}
		return nil
	})
	if err != nil || (scanned == 0 && postgresURL == "") {
		t.Errorf("scanning the data dir: %d files, %v", scanned, err)
	}

	var store interface {
		Installation(ctx context.Context, key string) (install.Record, bool, error)
		Close() error
	}
	if postgresURL != "" {
		store, err = postgres.Open(context.Background(), postgresURL, postgres.Options{})
	} else {
		store, err = storage.Open(context.Background(), data, storage.Options{})
	}
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rec, found, err := store.Installation(context.Background(), install.TeamKey("T2"))
	if err != nil || !found || rec.BotUser != "UT2BOT" || rec.Installer != "UANA" {
		t.Fatalf("stored installation %+v, %v, %v", rec, found, err)
	}
	if bytes.Contains(rec.Token, []byte(token)) || bytes.Contains(rec.Token, []byte("xoxb-")) {
		t.Error("the installed token is stored in the clear")
	}
	box, err := install.NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := box.Open(rec.Key(), rec.Token); err != nil || got != token {
		t.Errorf("the stored token does not open to the installed one: %v", err)
	}
}

// TestStorageCopyKeepsSlackInstallations moves a bbolt data dir with an
// installation into PostgreSQL: the installation arrives, its token still
// sealed and still opening with the same key, and copying again changes
// nothing.
func TestStorageCopyKeepsSlackInstallations(t *testing.T) {
	dir := t.TempDir()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	box, err := install.NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	rec := install.Record{Team: "T2", BotUser: "UT2BOT", Installer: "UANA", Scopes: []string{"chat:write"}, InstalledAt: time.Now().UTC().Truncate(time.Microsecond)}
	if rec.Token, err = box.Seal(rec.Key(), "xoxb-T2-secret"); err != nil {
		t.Fatal(err)
	}
	db, err := storage.Open(context.Background(), dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SaveInstallation(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	url := pgtest.Start(t).DB(t)
	cfg := writeFile(t, fmt.Sprintf("[storage]\nbackend = \"postgres\"\ndir = %q\n", dir))
	environ := map[string]string{"EASEL_POSTGRES_URL": url}
	for i := range 2 {
		out, errOut, code := easel(t, "", environ, "storage", "copy", "-config", cfg)
		if code != 0 || !strings.Contains(out, "1 Slack installations, ") {
			t.Fatalf("copy #%d: exit %d\n%s\n%s", i+1, code, out, errOut)
		}
	}
	dst, err := postgres.Open(context.Background(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	got, found, err := dst.Installation(context.Background(), rec.Key())
	if err != nil || !found || got.BotUser != rec.BotUser || got.Installer != rec.Installer || !got.InstalledAt.Equal(rec.InstalledAt) {
		t.Fatalf("copied installation %+v, %v, %v", got, found, err)
	}
	if token, err := box.Open(got.Key(), got.Token); err != nil || token != "xoxb-T2-secret" {
		t.Errorf("the copied token does not open: %v", err)
	}
}
