// Package console is the terminal as a chat platform: every line read is a
// message in one thread, results are image files whose paths are printed.
// It runs the same engine as the Slack and Discord adapters, so the whole
// refinement loop can be tried, scripted and tested without a chat account.
package console

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/imagecheck"
	"github.com/easel-bot/easel/core/safetext"
)

// Platform is the platform name of console sessions.
const Platform = "console"

// Engine is what the console needs of core.Engine.
type Engine interface {
	// Handle queues a message; see core.Engine.Handle.
	Handle(ctx context.Context, th core.Thread, msg core.Message) (core.Queued, error)
	// Session returns the current session of a thread, or a NotFound *core.Error.
	Session(ctx context.Context, platform, thread string) (*core.Session, error)
	// Limits returns the limits Handle checks prompts against; see
	// core.Engine.Limits.
	Limits() core.Limits
	// Cancel cancels a turn, or with id 0 the sender's queued and running
	// turns in the thread; see core.Engine.Cancel.
	Cancel(ctx context.Context, th core.Thread, msg core.Message, id int) error
	// Delete deletes version msg.Version; see core.Engine.Delete.
	Delete(ctx context.Context, th core.Thread, msg core.Message) error
	// Describe suggests prompts for an attached image; see
	// core.Engine.Describe.
	Describe(ctx context.Context, msg core.Message) (core.Described, error)
	// Suggestion returns a suggestion of a describe; see
	// core.Engine.Suggestion.
	Suggestion(ctx context.Context, sessionID string, turnID, n int, presser core.User) (string, error)
	// Styles, SetStyle and DeleteStyle list and manage the styles;
	// ChannelDefaults and SetChannelDefaults the console's defaults. See
	// core.Engine.
	Styles(ctx context.Context, msg core.Message) ([]core.Style, error)
	SetStyle(ctx context.Context, msg core.Message, name, spec string, refs []core.Image) (core.Style, bool, error)
	DeleteStyle(ctx context.Context, msg core.Message, name string) error
	ChannelDefaults(ctx context.Context, msg core.Message) (core.ChannelDefaults, string, error)
	SetChannelDefaults(ctx context.Context, msg core.Message, where, spec string) (core.ChannelDefaults, error)
}

// Channel is the channel of every console message: the terminal is one
// channel, whose defaults /defaults sets.
const Channel = "terminal"

// Options configure a Console.
type Options struct {
	// User is who types; the OS user name makes a good ID.
	User core.User
	// Thread is the thread key to continue; empty starts a new thread.
	Thread string
	// ImagePath returns where an image is stored, for /history.
	ImagePath func(core.ImageRef) string
	// Log receives internal errors.
	Log *slog.Logger
	// Wait makes Run wait for each message's turn to end before reading the
	// next line, so scripted input gives one result after another.
	Wait bool
	// Attachments bound the image files /describe reads.
	Attachments imagecheck.Limits
}

// Console reads messages from a reader and prints replies to a writer.
type Console struct {
	engine Engine
	opts   Options
	out    *output
	// described is the latest describe, whose suggestions /use picks from.
	described core.Described
}

// New returns a Console that sends messages to engine and writes to out.
func New(engine Engine, out io.Writer, opts Options) *Console {
	if opts.Thread == "" {
		opts.Thread = "chat-" + core.NewSessionID()
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Console{engine: engine, opts: opts, out: &output{w: out, waiting: map[string]chan struct{}{}}}
}

// Thread returns the console's thread key.
func (c *Console) Thread() string { return c.opts.Thread }

// ThreadFor returns the core.Thread that prints to this console, for resuming
// the work of an earlier run.
func (c *Console) ThreadFor() core.Thread { return c.out }

// help is the text of /help; %d is the largest --n.
const help = `Type a prompt to make an image, then reply to refine it.
Flags go at the end: --ar 16:9  --size 1536x1024  --quality low|medium|high|auto  --n 1..%d
  --model NAME  --provider NAME  --transparent  --format png|webp|jpeg  --seed N  --no "things to avoid"
  --style NAME
Commands:
  /undo [vN]     go back to the previous version (no cost)
  /regen [vN]    a new sample of the same request
  /vary [vN] [n] n variations of the same request
  /hq [vN]       re-render at high quality and a larger size
  /pick N        keep candidate N of the latest grid: the next prompt refines it
  /describe PATH up to 4 prompts suggested for the image file at PATH
  /use N         start a new session with suggestion N of the latest /describe
  @vN <text>     refine version N instead of the latest (branch)
  /cancel        cancel your requests queued or rendering in this session
  /delete vN     delete version N (it can no longer be refined or exported)
  /style [list]  the styles --style NAME takes
  /style set NAME words --flags [--ref PATH]…   define or replace a style (admins)
  /style delete NAME                            delete a style (admins)
  /defaults [--style NAME --model M --ar W:H --quality Q | clear]
                 show or set what new sessions here take by default (admins)
  /history       the version tree of this session
  /new           start a new session
  /quit          leave (also end of input)`

// Run reads lines until end of input, ctx's end or /quit. Each line is
// handed to the engine; Run does not wait for the images, which arrive as
// the engine finishes them. A line too long to hold (see lineLimits) gets
// the engine's answer to a prompt over its limit, counting the whole line,
// and Run goes on with the next.
func (c *Console) Run(ctx context.Context, in io.Reader) error {
	maxBytes, maxChars := lineLimits(c.engine.Limits())
	stop := make(chan struct{})
	defer close(stop)
	lines := readLines(newLineReader(in, maxBytes), stop)
	newSession := false
	for lineNo := 1; ; lineNo++ {
		var l inputLine
		select {
		case l = <-lines:
		case <-ctx.Done():
			return nil // a signal: stop now, even while waiting for input
		}
		text, chars, long, err := l.text, l.chars, l.long, l.err
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("console: read input: %w", err)
		}
		if ctx.Err() != nil {
			return nil
		}
		if long {
			c.out.printf("❌ %s\n", core.UserMessage(core.PromptTooLong(chars, maxChars), ""))
			continue
		}
		line := strings.TrimSpace(text)
		if line == "" {
			continue
		}
		msg := core.Message{Platform: Platform, Channel: Channel, Thread: c.opts.Thread, User: c.opts.User, Action: core.ActionPrompt, Text: line,
			Source: "line-" + strconv.Itoa(lineNo)}
		if strings.HasPrefix(line, "/") {
			var done bool
			var err error
			if msg, done, err = c.command(ctx, line, msg, &newSession); err != nil {
				c.out.printf("❌ %s\n", err)
				continue
			}
			if done {
				return nil
			}
			if msg.Action == "" {
				continue
			}
		} else if v, rest, ok := versionPrefix(line); ok {
			msg.Version, msg.Text = v, rest
		}
		if msg.Action == core.ActionPrompt && newSession {
			msg.NewSession, newSession = true, false
		}
		c.send(ctx, msg)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// command interprets a /command. It returns a message to send (Action ""
// for none) and whether to stop.
func (c *Console) command(ctx context.Context, line string, msg core.Message, newSession *bool) (core.Message, bool, error) {
	fields := strings.Fields(line)
	args := fields[1:]
	msg.Text = ""
	switch fields[0] {
	case "/quit", "/exit":
		return msg, true, nil
	case "/help":
		c.out.printf(help+"\n", max(c.engine.Limits().MaxN, 1))
	case "/new":
		*newSession = true
		c.out.printf("the next prompt starts a new session\n")
	case "/history":
		c.history(ctx)
	case "/pick":
		return c.pick(ctx, args, msg)
	case "/cancel":
		if len(args) > 0 {
			return msg, false, fmt.Errorf("/cancel: unexpected %q; it cancels all your requests in progress here", strings.Join(args, " "))
		}
		c.cancel(ctx, msg)
	case "/delete":
		n := 0
		if len(args) == 1 && strings.HasPrefix(args[0], "v") {
			n, _ = strconv.Atoi(args[0][1:])
		}
		if n < 1 {
			return msg, false, fmt.Errorf("/delete: name one version, such as /delete v2")
		}
		msg.Action, msg.Version = core.ActionDelete, n
		c.report(c.engine.Delete(ctx, c.out, msg), "console delete failed")
	case "/describe", "/style", "/defaults":
		run := map[string]func(context.Context, string, core.Message) error{"/describe": c.describe, "/style": c.style, "/defaults": c.defaults}[fields[0]]
		if err := run(ctx, strings.TrimSpace(strings.TrimPrefix(line, fields[0])), msg); err != nil {
			return msg, false, err
		}
	case "/use":
		return c.use(ctx, args, msg)
	case "/undo", "/regen", "/vary", "/hq":
		msg.Action = map[string]core.Action{"/undo": core.ActionUndo, "/regen": core.ActionRegenerate, "/vary": core.ActionVariations, "/hq": core.ActionHighQuality}[fields[0]]
		if len(args) > 0 && strings.HasPrefix(args[0], "v") {
			n, err := strconv.Atoi(args[0][1:])
			if err != nil || n < 1 {
				return msg, false, fmt.Errorf("%s: %q is not a version; use v1, v2, …", fields[0], args[0])
			}
			msg.Version, args = n, args[1:]
		}
		if len(args) > 0 && msg.Action == core.ActionVariations {
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 1 {
				return msg, false, fmt.Errorf("/vary: %q is not a number of variations", args[0])
			}
			args, msg.N = args[1:], n
		}
		if len(args) > 0 {
			return msg, false, fmt.Errorf("%s: unexpected %q; see /help", fields[0], strings.Join(args, " "))
		}
		return msg, false, nil
	default:
		return msg, false, fmt.Errorf("unknown command %s; try /help", fields[0])
	}
	msg.Action = ""
	return msg, false, nil
}

// pick returns the press of pick button N (args) under the session's
// latest grid of candidates.
func (c *Console) pick(ctx context.Context, args []string, msg core.Message) (core.Message, bool, error) {
	if len(args) != 1 {
		return msg, false, fmt.Errorf("/pick: say which candidate, /pick 1 for the first")
	}
	n, err := strconv.Atoi(args[0])
	if err != nil {
		return msg, false, fmt.Errorf("/pick: %q is not a candidate's number", args[0])
	}
	sess, err := c.engine.Session(ctx, Platform, c.opts.Thread)
	if core.KindOf(err) == core.NotFound {
		return msg, false, fmt.Errorf("/pick: there is no grid of candidates yet; ask for some with --n 4 or /vary")
	}
	if err != nil {
		return msg, false, fmt.Errorf("/pick: %w", err)
	}
	var grid []int
	for _, t := range sess.Turns {
		if t.Grid {
			grid = t.Outputs
		}
	}
	switch {
	case grid == nil:
		return msg, false, fmt.Errorf("/pick: there is no grid of candidates in this session; ask for some with --n 4 or /vary")
	case n < 1 || n > len(grid):
		return msg, false, fmt.Errorf("/pick: the latest grid has %d candidates; pick 1 to %d", len(grid), len(grid))
	}
	msg.Action, msg.Grid, msg.Version = core.ActionPick, grid[0], grid[n-1]
	return msg, false, nil
}

// describe prints the prompts suggested for the image file named by arg,
// which may end with flags (--provider NAME), numbered for /use.
func (c *Console) describe(ctx context.Context, arg string, msg core.Message) error {
	path, flags := arg, ""
	if i := strings.Index(arg, " --"); i >= 0 {
		path, flags = strings.TrimSpace(arg[:i]), arg[i:]
	}
	if path == "" {
		return fmt.Errorf("/describe: give the path of an image file, e.g. /describe photo.png")
	}
	img, err := imagecheck.ReadFile(path, c.opts.Attachments)
	if err != nil {
		return fmt.Errorf("/describe: %s", core.UserMessage(err, ""))
	}
	msg.Text, msg.Inputs = flags, []core.Image{img}
	d, err := c.engine.Describe(ctx, msg)
	if err != nil {
		ref := core.NewRef()
		if core.KindOf(err) == core.Internal {
			c.opts.Log.Error("console describe failed", "ref", ref, "err", err)
		}
		return fmt.Errorf("%s", core.UserMessage(err, ref))
	}
	c.described = d
	c.out.session(d.SessionID)
	var b strings.Builder
	fmt.Fprintf(&b, "💡 prompts for %s:\n", img.Name)
	for i, s := range d.Suggestions {
		fmt.Fprintf(&b, "   %d. %s\n", i+1, s)
	}
	fmt.Fprintf(&b, "   /use 1 to /use %d starts a new session with one\n", len(d.Suggestions))
	c.out.printf("%s", b.String())
	return nil
}

// use returns a prompt starting a new session with suggestion N (args) of
// the latest describe.
func (c *Console) use(ctx context.Context, args []string, msg core.Message) (core.Message, bool, error) {
	if len(args) != 1 {
		return msg, false, fmt.Errorf("/use: say which suggestion, /use 1 for the first")
	}
	n, err := strconv.Atoi(args[0])
	if err != nil {
		return msg, false, fmt.Errorf("/use: %q is not a suggestion's number", args[0])
	}
	if c.described.SessionID == "" {
		return msg, false, fmt.Errorf("/use: there are no suggestions yet; ask for some with /describe PATH")
	}
	prompt, err := c.engine.Suggestion(ctx, c.described.SessionID, c.described.TurnID, n, msg.User)
	if err != nil {
		return msg, false, fmt.Errorf("/use: %s", core.UserMessage(err, ""))
	}
	msg.Action, msg.Text, msg.NewSession = core.ActionPrompt, prompt, true
	return msg, false, nil
}

// send hands msg to the engine and prints where it stands; with opts.Wait
// it returns when the turn has ended.
func (c *Console) send(ctx context.Context, msg core.Message) {
	var done chan struct{}
	if c.opts.Wait {
		done = c.out.expect(msg.Source)
	}
	q, err := c.engine.Handle(ctx, c.out, msg)
	if err != nil {
		ref := core.NewRef()
		if core.KindOf(err) == core.Internal {
			c.opts.Log.Error("console message failed", "ref", ref, "err", err)
		}
		c.out.printf("❌ %s\n", core.UserMessage(err, ref))
		return
	}
	c.out.session(q.SessionID)
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
		}
	}
}

// cancel cancels the sender's queued and running turns in the thread; the
// engine says "🛑 canceled" for each once it is done.
func (c *Console) cancel(ctx context.Context, msg core.Message) {
	msg.Action = core.ActionCancel
	c.report(c.engine.Cancel(ctx, c.out, msg, 0), "console cancel failed")
}

// report prints err, if any, as the engine's message for the user; an
// internal error is logged under the reference it prints, as what.
func (c *Console) report(err error, what string) {
	if err == nil {
		return
	}
	ref := core.NewRef()
	if core.KindOf(err) == core.Internal {
		c.opts.Log.Error(what, "ref", ref, "err", err)
	}
	c.out.printf("❌ %s\n", core.UserMessage(err, ref))
}

// history prints the session's version tree and turns.
func (c *Console) history(ctx context.Context) {
	sess, err := c.engine.Session(ctx, Platform, c.opts.Thread)
	switch {
	case core.KindOf(err) == core.NotFound:
		c.out.printf("no images yet: type a prompt\n")
	case err != nil:
		ref := core.NewRef()
		c.opts.Log.Error("console history failed", "ref", ref, "err", err)
		c.out.printf("❌ %s\n", core.UserMessage(err, ref))
	default:
		c.out.mu.Lock()
		defer c.out.mu.Unlock()
		fmt.Fprintf(c.out.w, "session %s\n", sess.ID)
		_ = core.WriteTree(c.out.w, sess, c.opts.ImagePath)
	}
}

// versionPrefix splits "@v2 make it red" into 2 and "make it red".
func versionPrefix(line string) (int, string, bool) {
	if !strings.HasPrefix(line, "@v") {
		return 0, "", false
	}
	head, rest, _ := strings.Cut(line[2:], " ")
	n, err := strconv.Atoi(head)
	if err != nil || n < 1 {
		return 0, "", false
	}
	return n, strings.TrimSpace(rest), true
}

// output is the console's core.Thread: it prints, one line at a time, from
// whichever goroutine the engine calls it on.
type output struct {
	mu      sync.Mutex
	w       io.Writer
	current string                   // session id last announced
	waiting map[string]chan struct{} // message source → closed when its turn ends
}

// expect returns a channel closed when the turn from source ends.
func (o *output) expect(source string) chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	ch := make(chan struct{})
	o.waiting[source] = ch
	return ch
}

// Finish wakes whoever waits for the turn from source.
func (o *output) Finish(_ context.Context, source string, _ bool) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if ch, ok := o.waiting[source]; ok {
		close(ch)
		delete(o.waiting, source)
	}
	return nil
}

// printf prints to the terminal through safetext.Terminal: what came from
// a prompt, a chat or a model keeps its line breaks but cannot act on the
// terminal.
func (o *output) printf(format string, args ...any) {
	text := safetext.Terminal(fmt.Sprintf(format, args...))
	o.mu.Lock()
	defer o.mu.Unlock()
	io.WriteString(o.w, text)
}

// session announces the session id the first time it is seen.
func (o *output) session(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if id != o.current {
		o.current = id
		fmt.Fprintf(o.w, "session %s (see it later with: easel sessions show %s)\n", id, id)
	}
}

// Reply prints a message from Easel.
func (o *output) Reply(_ context.Context, text string) error {
	o.printf("%s\n", text)
	return nil
}

// PostImage prints the image's caption and file path; for a grid of
// candidates, how to pick one.
func (o *output) PostImage(_ context.Context, p core.ImagePost) error {
	if len(p.Candidates) > 0 {
		o.printf("🔢 %s\n   %s\n   /pick 1 to /pick %d keeps one\n", p.Caption, p.Path, len(p.Candidates))
		return nil
	}
	o.printf("✅ %s\n   %s\n", p.Caption, p.Path)
	return nil
}

// The console says how to cancel a turn where other platforms show a button.
var _ core.CancelOffer = (*output)(nil)

// SetTurnStatus prints the status of a turn, saying how to cancel it.
func (o *output) SetTurnStatus(ctx context.Context, status string, _ []core.CancelButton) error {
	return o.SetStatus(ctx, status+" (/cancel stops it)")
}

// SetStatus prints status changes; clearing the status prints nothing.
func (o *output) SetStatus(_ context.Context, status string) error {
	if status != "" {
		o.printf("%s\n", status)
	}
	return nil
}
