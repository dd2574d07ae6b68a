package console

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
)

// recorder is an Engine that records messages and ends each turn at once.
type recorder struct {
	unstyled
	msgs []core.Message
	err  error
}

func (r *recorder) Handle(ctx context.Context, th core.Thread, msg core.Message) (core.Queued, error) {
	if r.err != nil {
		return core.Queued{}, r.err
	}
	r.msgs = append(r.msgs, msg)
	if f, ok := th.(core.Finisher); ok {
		f.Finish(ctx, msg.Source, true)
	}
	return core.Queued{SessionID: "s1", TurnID: len(r.msgs)}, nil
}

func (r *recorder) Session(context.Context, string, string) (*core.Session, error) {
	return nil, core.Errorf(core.NotFound, "none")
}

func (r *recorder) Limits() core.Limits { return core.Limits{MaxN: 3, MaxPromptChars: 32000} }

func (r *recorder) Cancel(_ context.Context, _ core.Thread, msg core.Message, _ int) error {
	r.msgs = append(r.msgs, msg)
	return r.err
}

func (r *recorder) Delete(_ context.Context, _ core.Thread, msg core.Message) error {
	r.msgs = append(r.msgs, msg)
	return r.err
}

func TestRunTranslatesLines(t *testing.T) {
	rec := &recorder{}
	var out bytes.Buffer
	c := New(rec, &out, Options{User: core.User{ID: "me"}, Wait: true})
	input := "a fox\n\n/undo\n/regen v2\n/vary 3\n/vary v1 2\n/hq\n@v2 make it red\n/new\nfresh idea\n/history\n/help\n/quit\nnever read\n"
	if err := c.Run(context.Background(), strings.NewReader(input)); err != nil {
		t.Fatal(err)
	}
	want := []core.Message{
		{Action: core.ActionPrompt, Text: "a fox"},
		{Action: core.ActionUndo},
		{Action: core.ActionRegenerate, Version: 2},
		{Action: core.ActionVariations, N: 3},
		{Action: core.ActionVariations, Version: 1, N: 2},
		{Action: core.ActionHighQuality},
		{Action: core.ActionPrompt, Version: 2, Text: "make it red"},
		{Action: core.ActionPrompt, Text: "fresh idea", NewSession: true},
	}
	if len(rec.msgs) != len(want) {
		t.Fatalf("got %d messages, want %d: %+v", len(rec.msgs), len(want), rec.msgs)
	}
	for i, w := range want {
		m := rec.msgs[i]
		if m.Action != w.Action || m.Version != w.Version || m.Text != w.Text || m.N != w.N || m.NewSession != w.NewSession {
			t.Errorf("message %d = %+v, want %+v", i, m, w)
		}
		if m.Platform != Platform || m.Thread != c.Thread() || m.User.ID != "me" || m.Source == "" {
			t.Errorf("message %d lacks its origin: %+v", i, m)
		}
	}
	for _, s := range []string{"session s1", "no images yet", "/undo [vN]", "--n 1..3\n"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("output lacks %q:\n%s", s, out.String())
		}
	}
}

func TestRunReportsMistakes(t *testing.T) {
	rec := &recorder{}
	var out bytes.Buffer
	c := New(rec, &out, Options{})
	if err := c.Run(context.Background(), strings.NewReader("/frob\n/regen vx\n/vary many\n/undo now\n")); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"unknown command /frob", `/regen: "vx" is not a version`, `/vary: "many" is not a number`, `/undo: unexpected "now"`} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("output lacks %q:\n%s", s, out.String())
		}
	}
	if len(rec.msgs) != 0 {
		t.Errorf("mistakes reached the engine: %+v", rec.msgs)
	}
	rec.err = core.Errorf(core.Busy, "slow down")
	out.Reset()
	c.Run(context.Background(), strings.NewReader("a fox\n"))
	if !strings.Contains(out.String(), "❌ slow down") {
		t.Errorf("engine error not shown: %s", out.String())
	}
}

// echo is an Engine that shows each message's text back in every way the
// engine can: status, reply (of two lines), image caption and a refusal.
type echo struct{ unstyled }

func (echo) Handle(ctx context.Context, th core.Thread, msg core.Message) (core.Queued, error) {
	th.SetStatus(ctx, "⏳ rendering “"+msg.Text+"”")
	th.Reply(ctx, "you asked for “"+msg.Text+"”\nand a second line")
	th.PostImage(ctx, core.ImagePost{Caption: "v1 · “" + msg.Text + "”", Path: "/data/images/v1.png"})
	if f, ok := th.(core.Finisher); ok {
		f.Finish(ctx, msg.Source, true)
	}
	return core.Queued{SessionID: "s1"}, core.Errorf(core.Invalid, "unknown flag %s", msg.Text)
}

func (echo) Session(context.Context, string, string) (*core.Session, error) {
	return nil, core.Errorf(core.NotFound, "none")
}

func (echo) Limits() core.Limits { return core.Limits{} }

func (echo) Cancel(context.Context, core.Thread, core.Message, int) error { return nil }

func (echo) Delete(context.Context, core.Thread, core.Message) error { return nil }

func TestHostileTextIsEscaped(t *testing.T) {
	var out bytes.Buffer
	c := New(echo{}, &out, Options{Wait: true})
	input := coretest.Hostile + "\n/\x1b]0;title\x07\n"
	if err := c.Run(context.Background(), strings.NewReader(input)); err != nil {
		t.Fatal(err)
	}
	if err := coretest.Inert(out.String()); err != nil {
		t.Errorf("the console printed what acts on a terminal: %v", err)
	}
	for _, want := range []string{`a fox\x1b[2J\x1b[H`, `\x9b31m \u009b31m \x7f \u202egnp.exe \u2066isolated\u2069 \xff\xfe`,
		"”\nand a second line\n", `unknown command /\x1b]0;title\x07`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q: %q", want, out.String())
		}
	}
}

// A signal while Run waits for input (an idle terminal) ends it at once.
func TestRunStopsWhileWaitingForInput(t *testing.T) {
	in, w := io.Pipe()
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	c := New(&recorder{}, io.Discard, Options{User: core.User{ID: "me"}})
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, in) }()
	if _, err := io.WriteString(w, "a fox\n"); err != nil { // read and handled
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil after a signal", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run still waiting for input 10s after its context ended")
	}
}

func (r *recorder) Describe(context.Context, core.Message) (core.Described, error) {
	return core.Described{}, core.Errorf(core.Invalid, "no describer")
}

func (r *recorder) Suggestion(context.Context, string, int, int, core.User) (string, error) {
	return "", core.Errorf(core.NotFound, "none")
}

func (echo) Describe(context.Context, core.Message) (core.Described, error) {
	return core.Described{}, core.Errorf(core.Invalid, "no describer")
}

func (echo) Suggestion(context.Context, string, int, int, core.User) (string, error) {
	return "", core.Errorf(core.NotFound, "none")
}

// unstyled is an engine's style methods where none are kept.
type unstyled struct{}

func (unstyled) Styles(context.Context, core.Message) ([]core.Style, error) { return nil, nil }
func (unstyled) SetStyle(context.Context, core.Message, string, string, []core.Image) (core.Style, bool, error) {
	return core.Style{}, false, core.Errorf(core.Conflict, "no styles here")
}
func (unstyled) DeleteStyle(context.Context, core.Message, string) error {
	return core.Errorf(core.Conflict, "no styles here")
}
func (unstyled) ChannelDefaults(context.Context, core.Message) (core.ChannelDefaults, string, error) {
	return core.ChannelDefaults{}, "", nil
}
func (unstyled) SetChannelDefaults(context.Context, core.Message, string, string) (core.ChannelDefaults, error) {
	return core.ChannelDefaults{}, core.Errorf(core.Conflict, "no defaults here")
}
