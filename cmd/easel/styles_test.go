package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/storage"
)

func TestStylesCommand(t *testing.T) {
	dir := t.TempDir()
	logo := filepath.Join(t.TempDir(), "logo.png")
	if err := os.WriteFile(logo, coretest.PNG(3), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeFile(t, "[styles.house]\nprompt = \"in the house style\"\nflags = \"--quality high\"\nreferences = [\""+logo+"\"]\n")

	// A chat session uses the config's style, its reference image
	// included; sessions show says what it took.
	out, errOut, code := easel(t, "a fox --style house\n", nil, "chat", "-config", cfg, "-data", dir)
	if code != 0 {
		t.Fatalf("easel chat exited %d:\n%s\n%s", code, out, errOut)
	}
	id := sessionID(t, out)
	out, errOut, code = easel(t, "", nil, "sessions", "show", "-config", cfg, "-data", dir, id)
	if code != 0 || !strings.Contains(out, `#1 style house (--style), adding "in the house style"`) {
		t.Errorf("sessions show (exit %d) does not say which style applied:\n%s%s", code, out, errOut)
	}

	db, err := storage.Open(context.Background(), dir, storage.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close() // held during the commands below, as `easel run` would
	at := time.Date(2026, 12, 5, 9, 30, 0, 0, time.UTC)
	if err := db.PutStyle(context.Background(), "slack", "T1", core.Style{Name: "noir", Prompt: "film noir\x1b]0;owned\x07\tcolumn",
		Flags: core.Flags{Quality: "low"}, By: core.User{ID: "U1", Name: "ana\x1b[2J"}, At: at}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutChannelDefaults(context.Background(), "discord", "G1", "C9", core.ChannelDefaults{Style: "noir", Quality: "high",
		By: core.User{ID: "U2", Name: "bo"}, At: at}); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = easel(t, "", nil, "styles", "-config", cfg, "-data", dir)
	if code != 0 {
		t.Fatalf("easel styles exited %d: %s", code, errOut)
	}
	for _, want := range []string{
		"house  config    in the house style --quality high               1           config",
		`noir   slack/T1  film noir\x1b]0;owned\x07 column --quality low  0`,
		`ana\x1b[2J (U1) 2026-12-05 09:30`,
		"discord/G1/C9  --style noir --quality high  bo (U2) 2026-12-05 09:30",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("easel styles lacks %q:\n%s", want, out)
		}
	}
	if strings.ContainsAny(out, "\x1b\x07") {
		t.Errorf("escape sequences from chat reached the terminal:\n%q", out)
	}

	out, _, code = easel(t, "", nil, "styles", "-config", cfg, "-data", dir, "-json")
	var listed struct {
		Styles []struct {
			Name       string `json:"name"`
			Platform   string `json:"platform"`
			FromConfig bool   `json:"from_config"`
		} `json:"styles"`
		ChannelDefaults []struct {
			Channel string `json:"channel"`
			Style   string `json:"style"`
		} `json:"channel_defaults"`
	}
	if err := json.Unmarshal([]byte(out), &listed); code != 0 || err != nil {
		t.Fatalf("easel styles -json (exit %d): %v\n%s", code, err, out)
	}
	if len(listed.Styles) != 2 || !listed.Styles[0].FromConfig || listed.Styles[1].Platform != "slack" ||
		len(listed.ChannelDefaults) != 1 || listed.ChannelDefaults[0].Style != "noir" {
		t.Errorf("easel styles -json = %+v", listed)
	}

	if _, errOut, code := easel(t, "", nil, "styles", "-config", cfg, "-data", dir, "extra"); code != 2 || !strings.Contains(errOut, `unexpected argument "extra"`) {
		t.Errorf("easel styles extra: exit %d, %s", code, errOut)
	}
}

func TestStyleReferenceMissing(t *testing.T) {
	cfg := writeFile(t, "[styles.house]\nprompt = \"x\"\nreferences = [\"/nonexistent/logo.png\"]\n")
	_, errOut, code := easel(t, "a fox\n", nil, "chat", "-config", cfg, "-data", t.TempDir())
	if code == 0 || !strings.Contains(errOut, "styles.house.references entry 1: there is no file /nonexistent/logo.png") {
		t.Errorf("a missing reference image: exit %d, %s", code, errOut)
	}
}
