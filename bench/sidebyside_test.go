package bench

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/easel-bot/easel/bots/slack/slacktest"
)

// The side-by-side benchmark runs Easel and a minimal reference bot (see
// refbot_test.go) against the same loopback Slack and OpenAI fakes, one
// after the other and interleaved, each in a child process of its own (the
// test binary run again), so that the CPU time and peak RSS measured are
// that bot's alone and not the fakes'. The parent process serves the fakes
// and times everything from outside. See BENCHMARKS.md for the command and
// the figures.
var (
	sbsFull    = flag.Bool("sidebyside", false, "run the side-by-side benchmark at full size (about 3 minutes) instead of its reduced CI form")
	sbsDelay   = flag.Duration("sbs.delay", time.Second, "side-by-side: how long the OpenAI fake takes to answer")
	sbsReps    = flag.Int("sbs.reps", 3, "side-by-side: runs of each bot; the table shows medians")
	sbsSize    = flag.Int("sbs.size", 1<<20, "side-by-side: bytes of each PNG the OpenAI fake returns")
	sbsStream  = flag.Bool("sbs.stream", true, "side-by-side: Easel asks for partial images (its default)")
	sbsProfile = flag.String("sbs.cpuprofile", "", "side-by-side: write a CPU profile of each Easel child to this path (suffixed .1, .2…)")
)

// sbsChildEnv names the role of a child process: "easel" or "ref".
const sbsChildEnv = "EASEL_SBS_ROLE"

// sbsStats is what a child reports of itself.
type sbsStats struct {
	CPU     time.Duration `json:"cpu"`     // user + system time, getrusage(RUSAGE_SELF)
	HWM     int64         `json:"hwm_kb"`  // peak resident set since the last reset, VmHWM
	Commits uint64        `json:"commits"` // bbolt commits so far (Easel only)
}

// childStats returns the calling process's stats.
func childStats() sbsStats {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	var hwm int64
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for line := range strings.Lines(string(b)) {
			if f, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				hwm, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(f), " kB"), 10, 64)
			}
		}
	}
	return sbsStats{CPU: cpu, HWM: hwm}
}

// TestSideBySideBot is the child process of TestSideBySide: it runs one
// bot until its standard input closes, answering "stats" and "reset"
// (start measuring peak RSS afresh) on it. It is skipped unless run as a
// child.
func TestSideBySideBot(t *testing.T) {
	role := os.Getenv(sbsChildEnv)
	if role == "" {
		t.Skip("run by TestSideBySide as a child process")
	}
	env := func(k string) string { return os.Getenv("EASEL_SBS_" + k) }
	if path := env("CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stop func()
	var commits func() uint64
	switch role {
	case "easel":
		stop, commits = runEaselChild(t, ctx, env)
	case "ref":
		stop = runRefBot(t, ctx, refConfig{
			BotToken: env("BOT"), AppToken: env("APP"), SlackURL: env("SLACK"), OpenAIURL: env("OPENAI"),
		})
	default:
		t.Fatalf("unknown role %q", role)
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "stats":
			st := childStats()
			if commits != nil {
				st.Commits = commits()
			}
			b, _ := json.Marshal(st)
			fmt.Printf("%s\n", b)
		case "reset":
			// Writing 5 to clear_refs resets VmHWM to the current RSS.
			if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
				fmt.Printf("{\"error\":%q}\n", err.Error())
				continue
			}
			fmt.Printf("{}\n")
		}
	}
	cancel()
	stop()
}

// sbsChild is a running child process.
type sbsChild struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func startChild(t *testing.T, role string, fake *slacktest.Server, openaiURL, dir, profile string) *sbsChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSideBySideBot$", "-test.count=1", "-test.timeout=30m")
	cmd.Env = append(os.Environ(),
		sbsChildEnv+"="+role,
		"EASEL_SBS_BOT="+fake.BotToken, "EASEL_SBS_APP="+fake.AppToken, "EASEL_SBS_SLACK="+fake.APIURL(),
		"EASEL_SBS_OPENAI="+openaiURL, "EASEL_SBS_DIR="+dir, "EASEL_SBS_STREAM="+strconv.FormatBool(*sbsStream),
		"EASEL_SBS_CPUPROFILE="+profile,
		"GOMAXPROCS=", // inherit the machine's
	)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &sbsChild{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	t.Cleanup(func() { c.stop(t) })
	return c
}

// ask sends a command and returns the child's JSON answer.
func (c *sbsChild) ask(t *testing.T, command string) sbsStats {
	t.Helper()
	if _, err := fmt.Fprintln(c.in, command); err != nil {
		t.Fatal(err)
	}
	for c.out.Scan() {
		line := c.out.Bytes()
		if len(line) == 0 || line[0] != '{' {
			continue // the test framework's own output
		}
		var st sbsStats
		if err := json.Unmarshal(line, &st); err != nil {
			t.Fatalf("child said %q: %v", line, err)
		}
		return st
	}
	t.Fatalf("child ended: %v", c.out.Err())
	return sbsStats{}
}

func (c *sbsChild) stop(t *testing.T) {
	if c.in == nil {
		return
	}
	c.in.Close()
	c.in = nil
	go func() { _, _ = io.Copy(io.Discard, c.cmd.Stdout.(io.Reader)) }()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("child: %v", err)
		}
	case <-time.After(time.Minute):
		_ = c.cmd.Process.Kill()
		t.Errorf("child did not stop")
	}
}

// sbsOpenAI is the OpenAI fake of the side-by-side benchmark: POST
// /v1/images/generations answers after delay with a PNG of about size
// bytes whose bytes differ from every other answer's (a counter in a tEXt
// chunk near its start), as JSON or, when the request asks to stream, as
// server-sent events: one partial image per requested partial, spread over
// the delay, then the completed event. The base64 of the shared tail is
// encoded once, so the fake spends little per request.
type sbsOpenAI struct {
	srv      *httptest.Server
	delay    time.Duration
	head     []byte // PNG signature and IHDR
	tail64   string // base64 of the IDAT and IEND chunks
	seq      atomic.Int64
	received stamps
	written  stamps
}

func newSBSOpenAI(t *testing.T, delay time.Duration, size int) *sbsOpenAI {
	img := makePNG(size)
	// A PNG is its 8-byte signature, IHDR (25 bytes), then the rest.
	f := &sbsOpenAI{delay: delay, head: img[:33]}
	f.tail64 = base64.StdEncoding.EncodeToString(img[33:])
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// image64 returns the base64 of a fresh image: the head, a tEXt chunk with
// a counter, and the tail. The head and chunk come to 66 bytes, a multiple
// of 3, so the tail's base64 follows theirs unchanged.
func (f *sbsOpenAI) image64() string {
	n := f.seq.Add(1)
	data := []byte(fmt.Sprintf("easel\x00%015d", n)) // 21 bytes
	chunk := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	chunk = append(chunk, "tEXt"...)
	chunk = append(chunk, data...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	head := append(slices.Clone(f.head), chunk...)
	return base64.StdEncoding.EncodeToString(head) + f.tail64
}

func (f *sbsOpenAI) serve(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	var req struct {
		Prompt        string `json:"prompt"`
		Stream        bool   `json:"stream"`
		PartialImages int    `json:"partial_images"`
	}
	if r.URL.Path != "/v1/images/generations" || json.NewDecoder(r.Body).Decode(&req) != nil {
		http.Error(w, `{"error":{"message":"unexpected request","type":"invalid_request_error"}}`, http.StatusBadRequest)
		return
	}
	job := jobOf(req.Prompt)
	f.received.set(job, arrived)
	usage := `"usage":{"input_tokens":20,"output_tokens":4160,"total_tokens":4180,"input_tokens_details":{"text_tokens":20,"image_tokens":0}}`
	wait := func(d time.Duration) bool {
		select {
		case <-time.After(d):
			return true
		case <-r.Context().Done():
			return false
		}
	}
	if !req.Stream {
		if !wait(f.delay) {
			return
		}
		body := `{"created":1,"output_format":"png","data":[{"b64_json":"` + f.image64() + `"}],` + usage + `}`
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = io.WriteString(w, body)
		http.NewResponseController(w).Flush()
		f.written.set(job, time.Now())
		return
	}
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	step := f.delay / time.Duration(req.PartialImages+1)
	for i := range req.PartialImages {
		if !wait(step) {
			return
		}
		_, _ = fmt.Fprintf(w, "event: image_generation.partial_image\ndata: {\"type\":\"image_generation.partial_image\",\"b64_json\":\"%s\",\"partial_image_index\":%d,\"output_format\":\"png\",\"size\":\"1024x1024\"}\n\n", f.image64(), i)
		_ = rc.Flush()
	}
	if !wait(f.delay - step*time.Duration(req.PartialImages)) {
		return
	}
	_, _ = fmt.Fprintf(w, "event: image_generation.completed\ndata: {\"type\":\"image_generation.completed\",\"b64_json\":\"%s\",\"output_format\":\"png\",\"size\":\"1024x1024\",%s}\n\n", f.image64(), usage)
	_ = rc.Flush()
	f.written.set(job, time.Now())
}

// sbsWatch watches one bot's Web API calls on its Slack fake: how many,
// and when each job's Regenerate button was posted, its last step.
type sbsWatch struct {
	mu    sync.Mutex
	calls map[string]int
	done  map[int]chan time.Time
}

func (w *sbsWatch) intercept(method string, p map[string]string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls[method]++
	// A result's buttons, not a status line's Cancel button.
	if method == "chat.postMessage" && strings.Contains(p["blocks"], `"action_id":"regenerate"`) && len(p["channel"]) > 1 {
		if n, err := strconv.Atoi(p["channel"][1:]); err == nil && w.done[n] != nil {
			w.done[n] <- time.Now()
		}
	}
}

// expect returns the channel that receives the time job n's button is posted.
func (w *sbsWatch) expect(n int) chan time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := make(chan time.Time, 1)
	w.done[n] = c
	return c
}

func (w *sbsWatch) total() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, c := range w.calls {
		n += c
	}
	return n
}

func (w *sbsWatch) breakdown() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.calls)
}

// sbsRun is what one run of one bot measured.
type sbsRun struct {
	seq, workers, paced []time.Duration // overhead per request
	acks                []time.Duration // ack latency at 20 at once (workers and paced)
	cpuPerReq           time.Duration
	callsPerReq         float64
	calls               map[string]int
	hwmMB               float64 // peak RSS while 20 ran at once
	commitsPerTurn      float64
	commits             uint64 // in the child's whole life, opening the store included
	requests            int    // in the child's whole life, warm-up included
}

var sbsJob atomic.Int64 // job numbers, unique over the whole test

// sbsSide runs the three load shapes against one bot in a fresh child.
func sbsSide(t *testing.T, role string, oai *sbsOpenAI, n sbsSizes, profile string) sbsRun {
	fake := slacktest.NewServer(t)
	fake.WaitTimeout = 2 * time.Minute
	defer fake.Close()
	w := &sbsWatch{calls: map[string]int{}, done: map[int]chan time.Time{}}
	fake.Intercept(w.intercept)
	child := startChild(t, role, fake, oai.srv.URL+"/v1", t.TempDir(), profile)
	defer child.stop(t)
	fake.Connected(t)

	var mu sync.Mutex
	var run sbsRun
	// one sends job n and waits for its button; it returns the overhead.
	one := func(ack *[]time.Duration) time.Duration {
		job := int(sbsJob.Add(1))
		done := w.expect(job)
		env := fake.SlashCommand(fmt.Sprintf("U%06d", job), fmt.Sprintf("C%06d", job), fmt.Sprintf("bench job %d", job))
		sent := time.Now()
		id := fake.Send(t, env)
		var end time.Time
		select {
		case end = <-done:
		case <-time.After(2 * time.Minute):
			t.Errorf("%s: job %d: no button after 2 minutes", role, job)
			return 0
		}
		a := fake.WaitAck(t, id)
		recv, ok1 := oai.received.get(job)
		wrote, ok2 := oai.written.get(job)
		if !ok1 || !ok2 {
			t.Errorf("%s: job %d: the provider did not answer", role, job)
			return 0
		}
		if ack != nil {
			mu.Lock()
			*ack = append(*ack, a.Latency)
			mu.Unlock()
		}
		return end.Sub(sent) - wrote.Sub(recv)
	}
	for range 2 { // warm up: connections, caches
		one(nil)
	}
	before, calls0 := child.ask(t, "stats"), w.total()

	for range n.seq {
		run.seq = append(run.seq, one(nil))
	}

	child.ask(t, "reset")
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for next.Add(1) <= int64(n.workers) {
				d := one(&run.acks)
				mu.Lock()
				run.workers = append(run.workers, d)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	run.hwmMB = float64(child.ask(t, "stats").HWM) / 1024

	tick := time.NewTicker(50 * time.Millisecond) // 20/s
	for range n.paced {
		<-tick.C
		wg.Go(func() {
			d := one(&run.acks)
			mu.Lock()
			run.paced = append(run.paced, d)
			mu.Unlock()
		})
	}
	wg.Wait()
	tick.Stop()

	after, calls1 := child.ask(t, "stats"), w.total()
	reqs := n.seq + n.workers + n.paced
	run.cpuPerReq = (after.CPU - before.CPU) / time.Duration(reqs)
	run.callsPerReq = float64(calls1-calls0) / float64(reqs)
	run.calls = w.breakdown()
	run.commitsPerTurn = float64(after.Commits-before.Commits) / float64(reqs)
	run.commits, run.requests = after.Commits, reqs+2
	return run
}

// sbsSizes are the requests of each load shape.
type sbsSizes struct{ seq, workers, paced int }

// TestSideBySide measures Easel against the reference bot and prints the
// table of BENCHMARKS.md (medians over runs; ratios Easel / reference).
//
//	go test ./bench/ -run '^TestSideBySide$' -v -timeout 30m -args -sidebyside
//
// Without -sidebyside it runs a reduced form (short provider delay, one run,
// few requests) that checks that both bots work; its figures mean little.
func TestSideBySide(t *testing.T) {
	if os.Getenv(sbsChildEnv) != "" {
		t.Skip("the child runs TestSideBySideBot")
	}
	delay, reps, size := *sbsDelay, *sbsReps, *sbsSize
	n := sbsSizes{seq: 10, workers: 60, paced: 60}
	if !*sbsFull {
		delay, reps, size = 100*time.Millisecond, 1, 256<<10
		n = sbsSizes{seq: 2, workers: 20, paced: 10}
	}
	oai := newSBSOpenAI(t, delay, size)
	runs := map[string][]sbsRun{}
	for rep := range reps {
		order := []string{"easel", "ref"}
		if rep%2 == 1 {
			order = []string{"ref", "easel"}
		}
		for _, role := range order {
			profile := ""
			if role == "easel" && *sbsProfile != "" {
				profile = fmt.Sprintf("%s.%d", *sbsProfile, rep+1)
				if abs, err := filepath.Abs(profile); err == nil {
					profile = abs
				}
			}
			r := sbsSide(t, role, oai, n, profile)
			runs[role] = append(runs[role], r)
			t.Logf("run %d %-5s: overhead p50 1-at-a-time %s, 20 workers %s, paced %s; ack p50 %s p99 %s; CPU/req %s; calls/req %.1f; peak RSS %.1f MB; commits/turn %.2f (%d commits in all for %d requests)",
				rep+1, role, ms(p(r.seq, 50)), ms(p(r.workers, 50)), ms(p(r.paced, 50)), ms(p(r.acks, 50)), ms(p(r.acks, 99)),
				ms(r.cpuPerReq), r.callsPerReq, r.hwmMB, r.commitsPerTurn, r.commits, r.requests)
		}
	}
	e, ref := runs["easel"], runs["ref"]
	med := func(rs []sbsRun, f func(sbsRun) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	msOf := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	rows := []struct {
		name string
		unit string
		f    func(sbsRun) float64
	}{
		{"overhead (end-to-end minus provider time), 1 at a time, p50", "ms", func(r sbsRun) float64 { return msOf(p(r.seq, 50)) }},
		{"overhead, 20 workers back to back, p50", "ms", func(r sbsRun) float64 { return msOf(p(r.workers, 50)) }},
		{"overhead, paced at 20/s, p50", "ms", func(r sbsRun) float64 { return msOf(p(r.paced, 50)) }},
		{"CPU per request", "ms", func(r sbsRun) float64 { return msOf(r.cpuPerReq) }},
		{"ack latency at 20 at once, p50", "ms", func(r sbsRun) float64 { return msOf(p(r.acks, 50)) }},
		{"ack latency at 20 at once, p99", "ms", func(r sbsRun) float64 { return msOf(p(r.acks, 99)) }},
		{"Slack Web API calls per request", "", func(r sbsRun) float64 { return r.callsPerReq }},
		{"peak RSS, 20 at once", "MB", func(r sbsRun) float64 { return r.hwmMB }},
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nside by side: provider %s, %d-byte PNGs, Easel streaming %v, %d run(s) each, medians\n\n", delay, size, *sbsStream, reps)
	fmt.Fprintf(&b, "| median of %d runs | Easel | reference | ratio |\n|---|---|---|---|\n", reps)
	for _, row := range rows {
		ev, rv := med(e, row.f), med(ref, row.f)
		ratio := "—"
		if rv > 0 {
			ratio = fmt.Sprintf("%.2f×", ev/rv)
		}
		fmt.Fprintf(&b, "| %s | %.2f %s | %.2f %s | %s |\n", row.name, ev, row.unit, rv, row.unit, ratio)
	}
	commits := med(e, func(r sbsRun) float64 { return r.commitsPerTurn })
	fmt.Fprintf(&b, "\nEasel bbolt commits per turn: %.2f (%.2f fdatasyncs of easel.db, besides the inbox journal's: count those with strace, see BENCHMARKS.md); the reference makes none\n", commits, 2*commits)
	fmt.Fprintf(&b, "Web API calls, last run: Easel %v; reference %v\n", e[len(e)-1].calls, ref[len(ref)-1].calls)
	t.Log(b.String())
}

// p returns the q-th percentile of d, sorting a copy.
func p(d []time.Duration, q int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return percentile(s, q)
}
