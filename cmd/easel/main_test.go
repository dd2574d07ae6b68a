package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"image"
	_ "image/png"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/easel-bot/easel/storage"
)

// easel runs the command line in-process with the given standard input and
// environment, returning stdout, stderr and the exit status.
func easel(t *testing.T, stdin string, environ map[string]string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut, getenv: func(k string) string { return environ[k] }}
	code := run(context.Background(), args, e)
	return out.String(), errOut.String(), code
}

var pathLine = regexp.MustCompile(`(?m)^\s+(/\S+\.(png|jpg|webp))$`)

// imagePaths returns the image file paths printed by easel chat.
func imagePaths(out string) []string {
	var paths []string
	for _, m := range pathLine.FindAllStringSubmatch(out, -1) {
		paths = append(paths, m[1])
	}
	return paths
}

var sessionLine = regexp.MustCompile(`session (\w+) \(see it later`)

func sessionID(t *testing.T, out string) string {
	t.Helper()
	m := sessionLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no session id in output:\n%s", out)
	}
	return m[1]
}

// TestChatPreviewQuickStart is the README's first command: three distinct,
// valid images and the tree v1 → v2, v1 → v3.
func TestChatPreviewQuickStart(t *testing.T) {
	dir := t.TempDir()
	out, errOut, code := easel(t, "a red fox\nmake it blue\n/undo\nmake it green\n", nil, "chat", "--data", dir)
	if code != 0 {
		t.Fatalf("easel chat exited %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	paths := imagePaths(out)
	if len(paths) != 3 {
		t.Fatalf("printed %d image paths, want 3:\n%s", len(paths), out)
	}
	seen := map[[32]byte]bool{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := image.Decode(bytes.NewReader(data)); err != nil {
			t.Errorf("%s is not a valid image: %v", p, err)
		}
		seen[sha256.Sum256(data)] = true
		if !strings.HasPrefix(p, dir) {
			t.Errorf("image %s is outside the data dir %s", p, dir)
		}
	}
	if len(seen) != 3 {
		t.Errorf("the three images are not distinct")
	}

	id := sessionID(t, out)
	show, errOut, code := easel(t, "", nil, "sessions", "show", id, "--data", dir)
	if code != 0 {
		t.Fatalf("sessions show exited %d: %s", code, errOut)
	}
	for _, want := range []string{
		"v1 · “a red fox”",
		"├─ v2 (refine of v1) · “make it blue”",
		"└─ v3 (refine of v1) · “make it green”",
		"← head",
		"#3 ", "undo",
		paths[0], paths[1], paths[2],
	} {
		if !strings.Contains(show, want) {
			t.Errorf("sessions show lacks %q:\n%s", want, show)
		}
	}

	// Restart: the session is intact and can be continued.
	out, errOut, code = easel(t, "add a hat\n", nil, "chat", "--data", dir, "--session", id)
	if code != 0 || len(imagePaths(out)) != 1 {
		t.Fatalf("continuing the session: exit %d\n%s\n%s", code, out, errOut)
	}
	show, _, _ = easel(t, "", nil, "sessions", "show", id, "--data", dir)
	if !strings.Contains(show, "v4 (refine of v3) · “add a hat”") {
		t.Errorf("continued session lacks v4 refining v3:\n%s", show)
	}

	list, _, code := easel(t, "", nil, "sessions", "list", "--data", dir)
	if code != 0 || !strings.Contains(list, id) || !strings.Contains(list, "a red fox") {
		t.Errorf("sessions list (exit %d):\n%s", code, list)
	}
	exportDir := filepath.Join(t.TempDir(), "export")
	if _, errOut, code := easel(t, "", nil, "sessions", "export", id, "-o", exportDir, "--data", dir); code != 0 {
		t.Fatalf("sessions export exited %d: %s", code, errOut)
	}
	for _, name := range []string{"v1.png", "v2.png", "v3.png", "v4.png", "session.json", "index.html"} {
		if _, err := os.Stat(filepath.Join(exportDir, name)); err != nil {
			t.Errorf("export lacks %s: %v", name, err)
		}
	}
	first, _ := os.ReadFile(paths[0])
	exported, _ := os.ReadFile(filepath.Join(exportDir, "v1.png"))
	if !bytes.Equal(first, exported) {
		t.Errorf("exported v1.png differs from the stored image")
	}
}

func TestChatBadInput(t *testing.T) {
	dir := t.TempDir()
	input := strings.Join([]string{
		"   ",
		"--ar 16:9",
		strings.Repeat("x", 40000),
		"a fox --foo",
		"a fox --n 99",
		"a fox --ar 1:9",
		"/undo",
		"/bogus",
		"a fox",
	}, "\n")
	out, errOut, code := easel(t, input, nil, "chat", "--data", dir)
	if code != 0 {
		t.Fatalf("chat exited %d: %s", code, errOut)
	}
	for _, want := range []string{
		"❌ the prompt is empty",
		"❌ the prompt is 40000 characters long; the limit is 32000",
		"❌ unknown flag --foo; the flags are --ar, --size",
		"❌ --n 99 is not allowed: use a number from 1 to 4",
		"❌ --ar 1:9 is outside the supported range",
		"❌ this thread has no Easel session; start one with a prompt",
		"❌ unknown command /bogus; try /help",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if n := len(imagePaths(out)); n != 1 {
		t.Errorf("%d images made, want 1 (only the last line is valid):\n%s", n, out)
	}
}

func TestDataDirErrors(t *testing.T) {
	// A corrupt database: a clear message and a non-zero exit, file untouched.
	dir := t.TempDir()
	garbage := bytes.Repeat([]byte("not a database "), 1000)
	if err := os.WriteFile(filepath.Join(dir, "easel.db"), garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := easel(t, "a fox\n", nil, "chat", "--data", dir)
	if code != 1 || !strings.Contains(errOut, "not a valid Easel database") {
		t.Errorf("corrupt data dir: exit %d, stderr %q", code, errOut)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "easel.db")); !bytes.Equal(after, garbage) {
		t.Errorf("the corrupt database was modified")
	}

	// A data dir held by another process.
	dir = t.TempDir()
	cfgFile := filepath.Join(t.TempDir(), "easel.toml")
	if err := os.WriteFile(cfgFile, []byte("[storage]\nopen_timeout = \"200ms\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	release := make(chan struct{})
	holder := &blockingReader{ready: ready, release: release}
	done := make(chan int)
	go func() {
		var out bytes.Buffer
		done <- run(context.Background(), []string{"chat", "--data", dir}, &env{stdin: holder, stdout: &out, stderr: &out, getenv: func(string) string { return "" }})
	}()
	<-ready
	_, errOut, code = easel(t, "a fox\n", nil, "chat", "--data", dir, "--config", cfgFile)
	if code != 1 || !strings.Contains(errOut, "in use by another Easel process") {
		t.Errorf("locked data dir: exit %d, stderr %q", code, errOut)
	}
	// Reading commands read a snapshot instead.
	out, errOut, code := easel(t, "", nil, "sessions", "list", "--data", dir, "--config", cfgFile)
	if code != 0 || !strings.Contains(out, "no sessions yet") {
		t.Errorf("sessions list on a locked data dir: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	close(release)
	if code := <-done; code != 0 {
		t.Errorf("the holding chat exited %d", code)
	}
}

// blockingReader signals its first read and then blocks until released, like
// a terminal nobody types into.
type blockingReader struct {
	ready, release chan struct{}
	started        bool
}

func (r *blockingReader) Read([]byte) (int, error) {
	if !r.started {
		r.started = true
		close(r.ready)
	}
	<-r.release
	return 0, io.EOF
}

func TestCommandErrors(t *testing.T) {
	dir := t.TempDir()
	db, err := storage.Open(context.Background(), dir, storage.Options{}) // a data dir with no sessions
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[storage]\ndir = \"x\"\n\n[slack]\nmode = \"sockets\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"config", "check", "-config", bad}, 1, `bad.toml:5: slack.mode: must be "socket" or "http", got "sockets"`},
		{[]string{"config", "check", "-config", filepath.Join(dir, "missing.toml")}, 1, "missing.toml"},
		{[]string{"config", "check"}, 2, "missing -config FILE"},
		{[]string{"sessions", "show", "nosuch", "--data", dir}, 1, "nosuch"},
		{[]string{"sessions", "show", "--data", dir}, 2, "missing session ID"},
		{[]string{"sessions", "frobnicate"}, 2, "unknown subcommand"},
		{[]string{"chat", "--provider", "openai", "--data", dir}, 1, "OPENAI_API_KEY"},
		{[]string{"chat", "--provider", "dalle", "--data", dir}, 1, "provider"},
		{[]string{"chat", "--nope"}, 2, "flag provided but not defined"},
		{[]string{"run", "-config", bad}, 1, "slack.mode"},
		{[]string{"run"}, 1, "nothing to run"},
		{[]string{"frobnicate"}, 2, "unknown command"},
	}
	for _, tt := range tests {
		_, errOut, code := easel(t, "", nil, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("easel %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tt.args, " "), code, errOut, tt.code, tt.want)
		}
	}
	good := filepath.Join(dir, "good.toml")
	if err := os.WriteFile(good, []byte("[slack]\nenabled = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := easel(t, "", nil, "config", "check", "-config", good)
	if code != 0 || !strings.Contains(out, "ok") || !strings.Contains(out, "SLACK_BOT_TOKEN") {
		t.Errorf("config check of a good file: exit %d\n%s%s", code, out, errOut)
	}
	for _, cmd := range [][]string{{"chat", "-help"}, {"run", "--help"}, {"sessions", "--help"}, {"sessions", "show", "-h"}, {"config", "--help"}, {"version", "-h"}, {"--help"}} {
		if _, errOut, code := easel(t, "", nil, cmd...); code != 0 {
			t.Errorf("easel %s: exit %d: %s", strings.Join(cmd, " "), code, errOut)
		}
	}
	if out, _, code := easel(t, "", nil, "version"); code != 0 || !strings.HasPrefix(out, "easel ") {
		t.Errorf("version: %q", out)
	}
}
