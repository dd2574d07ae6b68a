package bench

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/slack"
	"github.com/easel-bot/easel/bots/slack/slacktest"
)

var (
	floodBin    = flag.String("flood.bin", "", "run TestSlackHTTPFlood against this easel binary instead of one built from ../cmd/easel")
	floodRedial = flag.Duration("flood.redial", time.Second, "how long a hostile connection of TestSlackHTTPFlood waits to open again once Easel closed it")
)

// TestSlackHTTPFlood runs the real easel binary in Slack http mode and
// floods it with hostile connections, half unsigned and half with
// well-formed, fresh signature headers forged without the secret, each
// declaring the largest body Easel accepts and sending all of it but the
// last byte; a connection Easel closes is opened again after -flood.redial
// (1 s: the flood holds connections; it is not a flood of new ones, which
// on this machine would measure the attacker's CPU more than Easel).
// Meanwhile a genuine, signed slash command arrives every 200 ms on a new
// connection; it asks for a 256×256 preview, so that rendering (whose memory
// BENCHMARKS.md measures) does not hide what the flood costs. It reports the process's resident memory before, at its peak and after
// the flood, the hostile requests' answers, and the genuine requests'
// latency. Targets (full run only): peak RSS under 100 MB with 2,000
// hostile connections; every genuine request answered 200 within Slack's
// 3 s.
func TestSlackHTTPFlood(t *testing.T) {
	const warmup = 3 // turns before the flood
	conns := pick(200, 2000)
	length := pick(3*time.Second, 15*time.Second)
	bin := easelBinary(t)

	fake := slacktest.NewServer(t)
	addr := freeAddr(t)
	base := "http://" + addr
	dir := t.TempDir()
	cfg := filepath.Join(dir, "easel.toml")
	toml := fmt.Sprintf("[provider]\ndefault = \"preview\"\n\n[slack]\nenabled = true\nmode = \"http\"\nlisten = %q\napi_url = %q\n", addr, fake.APIURL())
	if err := os.WriteFile(cfg, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(bin, "run", "-config", cfg, "-data", filepath.Join(dir, "data"))
	cmd.Env = append(os.Environ(), "SLACK_BOT_TOKEN="+fake.BotToken, "SLACK_SIGNING_SECRET="+fake.SigningSecret)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("easel's log:\n%s", logs.String())
		}
	})
	pid := cmd.Process.Pid

	genuine := &genuineClient{fake: fake, base: base, failed: map[int]int{}}
	if !waitUntil(30*time.Second, func() bool { return genuine.send(0) == http.StatusOK }) {
		t.Fatal("easel did not answer a signed request within 30 s of starting")
	}
	for n := 1; n < warmup; n++ { // warm up: a few whole turns
		genuine.send(n)
	}
	fake.WaitFor(t, "the warm-up images", func() bool {
		done := 0
		for _, u := range fake.Uploads() {
			if u.Completed && strings.HasPrefix(u.Title, "v") {
				done++
			}
		}
		return done >= warmup
	})
	genuine.reset()
	before, beforeAnon := procStatus(t, pid, "VmRSS"), procStatus(t, pid, "RssAnon")

	start := time.Now()
	flood := &hostile{base: base, body: bytes.Repeat([]byte{'{'}, slack.MaxRequestBody), until: start.Add(length), redial: *floodRedial}
	var peak, peakAnon atomic.Int64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if rss := procStatus(t, pid, "VmRSS"); rss > peak.Load() {
				peak.Store(rss)
			}
			if anon := procStatus(t, pid, "RssAnon"); anon > peakAnon.Load() {
				peakAnon.Store(anon)
			}
			if time.Now().After(flood.until) {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() { flood.run(i%2 == 0) })
	}
	for n := warmup; time.Now().Before(flood.until); n++ {
		genuine.send(n)
		time.Sleep(200 * time.Millisecond)
	}
	wg.Wait()
	<-sampled
	time.Sleep(2 * time.Second) // what the process keeps once the flood is over
	after, afterAnon := procStatus(t, pid, "VmRSS"), procStatus(t, pid, "RssAnon")
	hwm := procStatus(t, pid, "VmHWM")

	p50, p99, mx := summary(genuine.latencies)
	t.Logf("flood: %d hostile connections for %s, opened again %s after Easel closes them, against %s", conns, length, *floodRedial, bin)
	t.Logf("  RSS: before %.1f MB, peak %.1f MB (VmHWM %.1f MB), 2 s after %.1f MB; anonymous (without pages mapped from the binary and the database): %.1f, %.1f, %.1f MB",
		mb(before), mb(peak.Load()), mb(hwm), mb(after), mb(beforeAnon), mb(peakAnon.Load()), mb(afterAnon))
	t.Logf("  hostile requests: %d sent (%.0f/s), answers %s", flood.sent.Load(),
		float64(flood.sent.Load())/length.Seconds(), flood.answers())
	t.Logf("  genuine signed commands: %d, not answered 200: %d %v (status: count; 0 for none); latency p50 %s  p99 %s  max %s",
		len(genuine.latencies), genuine.failures(), genuine.failed, ms(p50), ms(p99), ms(mx))
	if n := genuine.failures(); n > 0 {
		t.Errorf("%d of %d genuine requests were not answered 200 during the flood", n, len(genuine.latencies))
	}
	if *full && (hwm > 100<<20 || mx > 3*time.Second) {
		t.Errorf("peak RSS %.1f MB (target < 100 MB), slowest genuine answer %s (target < 3 s)", mb(hwm), ms(mx))
	}
}

// hostile is the flood: connections that each send the headers of a
// request and all of its declared body but the last byte, then wait.
type hostile struct {
	base   string
	body   []byte        // the whole declared body; shared, never written
	until  time.Time     // when the flood ends
	redial time.Duration // how long a connection waits to open again
	sent   atomic.Int64

	mu     sync.Mutex
	status map[string]int // answers by status line, or how the connection ended
}

// run keeps one hostile connection open until the flood stops: unsigned,
// or with forged headers.
func (h *hostile) run(unsigned bool) {
	for time.Now().Before(h.until) {
		h.count(h.once(unsigned))
		time.Sleep(h.redial)
	}
}

// once sends one hostile request and returns how it ended.
func (h *hostile) once(unsigned bool) string {
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
	if err != nil {
		return "dial failed"
	}
	defer conn.Close()
	_ = conn.SetDeadline(h.until)
	var req strings.Builder
	fmt.Fprintf(&req, "POST /slack/events HTTP/1.1\r\nHost: easel\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", len(h.body))
	if !unsigned {
		sig := make([]byte, 32)
		_, _ = rand.Read(sig)
		fmt.Fprintf(&req, "X-Slack-Request-Timestamp: %d\r\nX-Slack-Signature: v0=%s\r\n", time.Now().Unix(), hex.EncodeToString(sig))
	}
	req.WriteString("\r\n")
	h.sent.Add(1)
	if _, err := io.WriteString(conn, req.String()); err != nil {
		return "reset"
	}
	_, _ = conn.Write(h.body[:len(h.body)-1]) // fails once Easel has answered and closed
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return "held until the end"
	}
	if err != nil {
		return "closed without an answer"
	}
	resp.Body.Close()
	return resp.Status
}

func (h *hostile) count(how string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.status == nil {
		h.status = map[string]int{}
	}
	h.status[how]++
}

// answers lists how the hostile requests ended.
func (h *hostile) answers() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var parts []string
	for how, n := range h.status {
		parts = append(parts, fmt.Sprintf("%s ×%d", how, n))
	}
	return strings.Join(parts, ", ")
}

// genuineClient sends signed slash commands as Slack does, each on a new
// connection, and records their latency.
type genuineClient struct {
	fake      *slacktest.Server
	base      string
	client    http.Client
	latencies []time.Duration
	failed    map[int]int // requests not answered 200, by status (0: no answer)
}

// send delivers slash command n, by its own user in its own channel, and
// returns the status it was answered with (0 for none).
func (g *genuineClient) send(n int) int {
	if g.client.Transport == nil {
		g.client = http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	}
	env := g.fake.SlashCommand(fmt.Sprintf("U%06d", n), fmt.Sprintf("C%06d", n), fmt.Sprintf("flood job %d --size 256x256", n))
	req, err := g.fake.HTTPRequest(g.base, env, slacktest.Signing{})
	if err != nil {
		panic(err)
	}
	start := time.Now()
	status := 0
	if resp, err := g.client.Do(req); err == nil {
		status = resp.StatusCode
		resp.Body.Close()
	}
	g.latencies = append(g.latencies, time.Since(start))
	if status != http.StatusOK {
		g.failed[status]++
	}
	return status
}

func (g *genuineClient) reset() { g.latencies, g.failed = nil, map[int]int{} }

// failures returns how many requests were not answered 200.
func (g *genuineClient) failures() int {
	n := 0
	for _, k := range g.failed {
		n += k
	}
	return n
}

// easelBinary returns the binary given with -flood.bin, or one built from
// ../cmd/easel.
func easelBinary(t *testing.T) string {
	t.Helper()
	if *floodBin != "" {
		return *floodBin
	}
	bin := filepath.Join(t.TempDir(), "easel")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/easel").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freeAddr returns a loopback address no one listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// procStatus returns a size field of /proc/pid/status, such as VmRSS, in
// bytes.
func procStatus(t *testing.T, pid int, field string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Errorf("reading the process's status: %v", err)
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Errorf("%s: %q", field, rest)
			}
			return kb << 10
		}
	}
	t.Errorf("no %s in /proc/%d/status", field, pid)
	return 0
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }
