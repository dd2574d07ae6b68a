package console

import (
	"bytes"
	"context"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/easel-bot/easel/core"
)

func TestLineReader(t *testing.T) {
	const max = 70000 // more than the reader's 64 KiB buffer
	edge := strings.Repeat("x", 64<<10-1)
	input := "a fox\r\n\n" + // CRLF, then an empty line
		"héllo wörld\n" + // characters, not bytes, are counted
		edge + "\r\n" + // the CR is the last byte of a full buffer
		strings.Repeat("y", max) + "\n" + // exactly max bytes
		strings.Repeat("z", max+1) + "\r\n" + // one byte too many
		strings.Repeat("é", max) + "\n" + // 2×max bytes, max characters
		"last, no newline\r"
	type line struct {
		text  string
		chars int
		long  bool
	}
	want := []line{
		{"a fox", 5, false},
		{"", 0, false},
		{"héllo wörld", 11, false},
		{edge, len(edge), false},
		{strings.Repeat("y", max), max, false},
		{"", max + 1, true},
		{"", max, true},
		{"last, no newline", 16, false},
	}
	l := newLineReader(strings.NewReader(input), max)
	for i, w := range want {
		text, chars, long, err := l.next()
		if err != nil || text != w.text || chars != w.chars || long != w.long {
			t.Errorf("line %d = %.20q (%d bytes), %d characters, long %v, %v; want %.20q (%d bytes), %d, %v",
				i+1, text, len(text), chars, long, err, w.text, len(w.text), w.chars, w.long)
		}
	}
	if _, _, _, err := l.next(); err != io.EOF {
		t.Errorf("after the last line: %v, want EOF", err)
	}
}

func TestOverlongLineIsRefusedAndReadingGoesOn(t *testing.T) {
	rec := &recorder{}
	var out bytes.Buffer
	c := New(rec, &out, Options{Wait: true})
	input := "a fox\n" + strings.Repeat("x", 2<<20) + "\na hen\n"
	if err := c.Run(context.Background(), strings.NewReader(input)); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(rec.msgs) != 2 || rec.msgs[0].Text != "a fox" || rec.msgs[1].Text != "a hen" || rec.msgs[1].Source != "line-3" {
		t.Errorf("the engine got %+v, want the first and third lines", rec.msgs)
	}
	// The engine's own answer to a long prompt, with its limit.
	_, _, err := core.ParsePrompt(strings.Repeat("x", 2<<20), rec.Limits())
	if want := "❌ " + core.UserMessage(err, "") + "\n"; !strings.Contains(out.String(), want) || want != "❌ the prompt is 2097152 characters long; the limit is 32000\n" {
		t.Errorf("output lacks %q: %q", want, out.String())
	}
}

// endless is a reader of x's that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// TestOverlongLineCostsBoundedMemory reads a 64 MiB line that is never in
// memory as a whole: reading it costs a small fraction of that.
func TestOverlongLineCostsBoundedMemory(t *testing.T) {
	rec := &recorder{}
	c := New(rec, io.Discard, Options{Wait: true})
	input := io.MultiReader(strings.NewReader("a fox\n"), io.LimitReader(endless{}, 64<<20), strings.NewReader("\na hen\n"))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := c.Run(context.Background(), input); err != nil {
		t.Fatalf("Run: %v", err)
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 8<<20 {
		t.Errorf("reading a 64 MiB line allocated %d MiB", n>>20)
	}
	if len(rec.msgs) != 2 {
		t.Errorf("the engine got %d messages, want 2", len(rec.msgs))
	}
}
