package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/slack/slacktest"
	"github.com/easel-bot/easel/internal/fulldisk"
	"github.com/easel-bot/easel/storage"
)

// TestGracefulStop sends SIGTERM to the real binary while turns render:
// a turn that cannot finish within engine.stop_grace stops the process
// within the grace, stays recorded, and is finished by the next start, once.
func TestGracefulStop(t *testing.T) {
	bin := buildEasel(t)
	srv := slacktest.NewServer(t)
	data := t.TempDir()
	config := func(delay string) string {
		return writeFile(t, fmt.Sprintf(`[storage]
dir = %q
[provider]
default = "preview"
[preview]
delay = %q
[engine]
stop_grace = "1500ms"
[slack]
enabled = true
api_url = %q
`, data, delay, srv.APIURL()))
	}
	c := &crasher{t: t, bin: bin, cfg: config("4s"), data: data, srv: srv,
		environ: []string{"SLACK_BOT_TOKEN=" + srv.BotToken, "SLACK_APP_TOKEN=" + srv.AppToken}}
	p := c.start()
	srv.WaitAck(t, srv.Send(t, srv.SlashCommand("UANA", "C1", "a slow fox")))
	srv.WaitFor(t, "the turn to start rendering", func() bool {
		for _, m := range srv.Messages("C1") {
			if strings.HasPrefix(m.Text, "🎨 rendering") {
				return true
			}
		}
		return false
	})
	stopping := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	took := time.Since(stopping)
	if p.code != 0 {
		t.Errorf("easel run exited %d after SIGTERM:\n%s", p.code, c.allLogs())
	}
	if took > 10*time.Second {
		t.Errorf("stopping took %s with stop_grace 1.5s", took)
	}
	if n := completedResults(srv); n != 0 {
		t.Errorf("%d results before the restart; the 4 s turn cannot have finished in a 1.5 s grace", n)
	}
	db, err := storage.Open(context.Background(), data, storage.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := db.ActiveJobs(context.Background())
	db.Close()
	if err != nil || len(jobs) != 1 {
		t.Fatalf("turns left recorded after the stop = %v, %v; want the interrupted one", jobs, err)
	}

	// The next start finishes the interrupted turn and takes new work.
	c.cfg = config("200ms")
	p = c.start()
	srv.Send(t, srv.SlashCommand("UBOB", "C1", "a heron after the restart"))
	srv.WaitFor(t, "both results", func() bool { return completedResults(srv) == 2 })
	if code := p.term(); code != 0 {
		t.Errorf("easel run exited %d after SIGTERM", code)
	}
	if n := completedResults(srv); n != 2 {
		t.Errorf("%d results shared, want 2", n)
	}
	t.Logf("figures: stop with a turn still rendering took %s (stop_grace 1.5s); the turn resumed on the next start", took.Round(time.Millisecond))
}

func completedResults(srv *slacktest.Server) int {
	n := 0
	for _, u := range srv.Uploads() {
		if u.Completed && strings.HasPrefix(u.Title, "v") {
			n++
		}
	}
	return n
}

// TestChatOnAFullDisk runs `easel chat` on a small tmpfs that fills up
// while an image renders. Easel retries for engine.store_retry, then tells
// the terminal once that it gave up, takes the next line (it used to wait
// for ever), and once there is room again carries on where it was; each
// image is printed once, the log stays short, and the database is sound.
func TestChatOnAFullDisk(t *testing.T) {
	if fulldisk.AsRoot(t) {
		return
	}
	bin := buildEasel(t)
	disk := fulldisk.Small(t, "4m")
	cfg := writeFile(t, fmt.Sprintf("[storage]\ndir = %q\n[preview]\ndelay = \"1s\"\n[engine]\nstore_retry = \"1s\"\n", filepath.Join(disk, "data")))
	p := startChat(t, bin, "-config", cfg, "-provider", "preview")
	p.say("a red fox")
	p.waitOut("the render to start", "🎨 rendering v1")
	filled := time.Now()
	filler := fulldisk.Fill(t, disk)
	p.waitOut("the give-up message", "can't save its work")
	gaveUp := time.Since(filled)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	p.say("make it blue")
	p.waitOut("v2", "✅ v2")
	p.stdin.Close()
	code, took := p.wait(30 * time.Second)
	out, errOut := p.out.String(), p.err.String()
	if code != 0 {
		t.Errorf("easel chat exited %d:\n%s\n%s", code, out, errOut)
	}
	for what, want := range map[string]int{"can't save its work": 1, "✅ v1": 1, "✅ v2": 1} {
		if n := strings.Count(out, what); n != want {
			t.Errorf("%q printed %d times, want %d:\n%s", what, n, want, out)
		}
	}
	if n := strings.Count(errOut, "\n"); n > 10 {
		t.Errorf("%d log lines for one full disk:\n%s", n, errOut)
	}
	db, err := storage.Open(context.Background(), filepath.Join(disk, "data"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Check(context.Background()); err != nil {
		t.Errorf("database after the full disk: %v", err)
	}
	t.Logf("figures: gave up %s after the disk filled (store_retry 1s, 1s render); exited %s after its input ended",
		gaveUp.Round(time.Millisecond), took.Round(time.Millisecond))
}

// TestChatStopsOnSignalWhileDiskIsFull: with the store retrying for an
// hour, SIGTERM still ends `easel chat` at once; the turn stays recorded.
func TestChatStopsOnSignalWhileDiskIsFull(t *testing.T) {
	if fulldisk.AsRoot(t) {
		return
	}
	bin := buildEasel(t)
	disk := fulldisk.Small(t, "4m")
	cfg := writeFile(t, fmt.Sprintf("[storage]\ndir = %q\n[preview]\ndelay = \"500ms\"\n[engine]\nstore_retry = \"1h\"\n", filepath.Join(disk, "data")))
	p := startChat(t, bin, "-config", cfg, "-provider", "preview")
	p.say("a red fox")
	p.waitOut("the render to start", "🎨 rendering v1")
	fulldisk.Fill(t, disk)
	p.waitErr("the store to be retried", "the store failed; retrying")
	stopping := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	code, _ := p.wait(30 * time.Second)
	took := time.Since(stopping)
	if code != 0 {
		t.Errorf("easel chat exited %d after SIGTERM:\n%s", code, p.err.String())
	}
	if took > 5*time.Second {
		t.Errorf("easel chat took %s to exit after SIGTERM while the store failed", took)
	}
	t.Logf("figures: exited %s after SIGTERM while retrying a full disk (store_retry 1h)", took.Round(time.Millisecond))
}

// chatProc is a running `easel chat` whose standard input the test writes.
type chatProc struct {
	t        *testing.T
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	out, err *syncBuffer
	done     chan struct{}
}

func startChat(t *testing.T, bin string, args ...string) *chatProc {
	t.Helper()
	p := &chatProc{t: t, out: &syncBuffer{b: &bytes.Buffer{}}, err: &syncBuffer{b: &bytes.Buffer{}}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"chat"}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.err
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

func (p *chatProc) say(line string) {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		p.t.Fatal(err)
	}
}

func (p *chatProc) waitOut(what, text string) { p.t.Helper(); p.waitIn(p.out, what, text) }
func (p *chatProc) waitErr(what, text string) { p.t.Helper(); p.waitIn(p.err, what, text) }

// waitIn waits until buf holds text, failing after a generous deadline (a
// hang guard) or when the process exits first.
func (p *chatProc) waitIn(buf *syncBuffer, what, text string) {
	p.t.Helper()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(buf.String(), text) {
		select {
		case <-p.done:
			p.t.Fatalf("easel chat exited before %s:\n%s\n%s", what, p.out.String(), p.err.String())
		case <-deadline:
			p.t.Fatalf("timed out waiting for %s:\n%s\n%s", what, p.out.String(), p.err.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// wait waits up to limit for the process to exit and returns its status
// and how long it took; a process still running then fails the test.
func (p *chatProc) wait(limit time.Duration) (int, time.Duration) {
	p.t.Helper()
	start := time.Now()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), time.Since(start)
	case <-time.After(limit):
		p.t.Fatalf("easel chat still running %s later:\n%s\n%s", limit, p.out.String(), p.err.String())
		return -1, 0
	}
}
