package slack

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	slackapi "github.com/slack-go/slack"

	"github.com/easel-bot/easel/core"
)

// Reactions on the triggering message.
const (
	reactWorking = "hourglass_flowing_sand"
	reactDone    = "white_check_mark"
	reactFailed  = "x"
)

// thread is a Slack thread as the engine sees it. One value serves a thread
// for the bot's lifetime (see threadCache), so its status message survives
// from one engine call to the next.
type thread struct {
	bot     *Bot
	who     teamID // the workspace the thread is in
	channel string
	root    string // timestamp of the thread's root message
	// dm says the thread is in a DM with the bot, where the assistant
	// pane's threads are: a turn's status is also shown as the pane's
	// loading status (see assist).
	dm bool

	mu            sync.Mutex // serialises status changes, in order
	statusTS      string     // the status message, "" when there is none
	status        string
	statusButtons []core.CancelButton // the status's Cancel buttons; nil for none
	assisting     bool                // the pane's loading status was set, and not cleared since

	previewed   bool   // a partial image was shown for the running turn
	previewFile string // the file of that image, deleted when the turn ends
	// swept says the thread was searched for previews an earlier process
	// left (it stopped before deleting them); done once per value.
	swept bool

	reactMu sync.Mutex
	adding  map[string]chan struct{} // ⏳ being put on these messages, closed when done
}

var (
	_ core.Thread         = (*thread)(nil)
	_ core.Previewer      = (*thread)(nil)
	_ core.PreviewLimiter = (*thread)(nil)
	_ core.Finisher       = (*thread)(nil)
	_ core.Resender       = (*thread)(nil)
	_ core.CancelOffer    = (*thread)(nil)
	_ core.Remover        = (*thread)(nil)
)

// Reply posts text in the thread.
func (t *thread) Reply(ctx context.Context, text string) error {
	_, err := t.post(ctx, slackapi.MsgOptionText(escape(text), false))
	return err
}

// call runs fn, the Web API method named method, with the client of the
// thread's workspace (see Bot.call).
func (t *thread) call(ctx context.Context, method string, fn func(api *slackapi.Client) error) error {
	w, err := t.bot.workspace(ctx, t.who)
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	return t.bot.call(ctx, method, func() error { return fn(w.api) })
}

// post posts a message in the thread and returns its timestamp.
func (t *thread) post(ctx context.Context, opts ...slackapi.MsgOption) (string, error) {
	var ts string
	err := t.call(ctx, "chat.postMessage", func(api *slackapi.Client) (err error) {
		_, ts, err = api.PostMessageContext(ctx, t.channel, append(opts, slackapi.MsgOptionTS(t.root))...)
		return err
	})
	return ts, err
}

// PostImage uploads the image into the thread with its caption as the
// comment (files.getUploadURLExternal, the upload, then
// files.completeUploadExternal), then posts its buttons; a grid of
// candidates is one upload too, with its pick buttons.
//
// With p.Retry (an earlier process may have posted it before it stopped),
// it first reads the thread and skips the steps whose result is there: the
// shared file, by its name, and the buttons, by their value. A file
// uploaded but never completed is not in the thread and is uploaded again.
func (t *thread) PostImage(ctx context.Context, p core.ImagePost) error {
	name := fmt.Sprintf("easel-%s-v%d%s", p.SessionID, p.Version, p.Image.Ext())
	title, text := fmt.Sprintf("v%d", p.Version), fmt.Sprintf("v%d: reply in this thread to refine it", p.Version)
	value := buttonValue(p.SessionID, p.Version)
	if len(p.Candidates) > 0 {
		name = fmt.Sprintf("easel-%s-v%d-grid%s", p.SessionID, p.Version, p.Image.Ext())
		title, text = gridTitle(p)+" (preview)", gridTitle(p)+": a preview; pick one to keep it"
		value = pickValue(p.SessionID, p.Version, p.Candidates[0])
	}
	var shared, buttoned bool
	if p.Retry {
		msgs, err := t.history(ctx, p.Since)
		if err != nil {
			t.bot.log.Warn("slack: looking for an earlier post failed; posting it", "channel", t.channel, "err", err)
		}
		for _, m := range msgs {
			shared = shared || slices.ContainsFunc(m.Files, func(f slackapi.File) bool { return f.Name == name })
			buttoned = buttoned || hasButtonValue(m, value)
		}
	}
	if !shared {
		if _, err := t.upload(ctx, p.Image, name, title, p.Caption, p.Guard); err != nil {
			return err
		}
	}
	if len(p.Buttons) == 0 || buttoned {
		return nil
	}
	if err := guard(ctx, p.Guard); err != nil {
		return err
	}
	_, err := t.post(ctx, slackapi.MsgOptionText(text, false), slackapi.MsgOptionBlocks(buttonBlocks(p)...))
	return err
}

// RemoveImage takes the post of version n of session id down: the image's
// file (files.delete, which takes its message with it) and the message
// with its buttons (chat.delete), found among the bot's messages in the
// thread.
func (t *thread) RemoveImage(ctx context.Context, id string, n int) error {
	msgs, err := t.history(ctx, time.Unix(0, 0))
	if err != nil {
		return err
	}
	prefix, value := fmt.Sprintf("easel-%s-v%d.", id, n), buttonValue(id, n)
	for _, m := range msgs {
		for _, f := range m.Files {
			if !strings.HasPrefix(f.Name, prefix) {
				continue
			}
			if err := t.deleteFile(ctx, f.ID); err != nil {
				return err
			}
		}
		if !hasButtonValue(m, value) {
			continue
		}
		err := t.call(ctx, "chat.delete", func(api *slackapi.Client) error {
			_, _, err := api.DeleteMessageContext(ctx, t.channel, m.Timestamp)
			return err
		})
		if err != nil && errorCode(err) != "message_not_found" {
			return err
		}
	}
	return nil
}

// deleteFile deletes file id (files.delete); a file gone already is no
// error.
func (t *thread) deleteFile(ctx context.Context, id string) error {
	err := t.call(ctx, "files.delete", func(api *slackapi.Client) error { return api.DeleteFileContext(ctx, id) })
	if c := errorCode(err); c == "file_not_found" || c == "file_deleted" {
		return nil
	}
	return err
}

// Posted reports whether the bot posted text in the thread since the
// given time.
func (t *thread) Posted(ctx context.Context, text string, since time.Time) (bool, error) {
	msgs, err := t.history(ctx, since)
	want := escape(text)
	return slices.ContainsFunc(msgs, func(m slackapi.Message) bool { return m.Text == want }), err
}

// history returns the bot's messages in the thread since the given time,
// oldest first (conversations.replies, page by page).
func (t *thread) history(ctx context.Context, since time.Time) ([]slackapi.Message, error) {
	w, err := t.bot.workspace(ctx, t.who)
	if err != nil {
		return nil, err
	}
	if w == t.bot.home {
		if err := t.bot.identify(ctx); err != nil { // a turn resumed before Run
			return nil, err
		}
	}
	params := &slackapi.GetConversationRepliesParameters{
		ChannelID: t.channel, Timestamp: t.root, Inclusive: true, Limit: 200,
		Oldest: fmt.Sprintf("%d.%06d", since.Unix(), since.Nanosecond()/1000),
	}
	var mine []slackapi.Message
	for page := 0; page < 50; page++ {
		var msgs []slackapi.Message
		var more bool
		err := t.call(ctx, "conversations.replies", func(api *slackapi.Client) (err error) {
			msgs, more, params.Cursor, err = api.GetConversationRepliesContext(ctx, params)
			return err
		})
		if err != nil {
			return mine, err
		}
		for _, m := range msgs {
			if m.BotID != "" && m.BotID == w.botID || m.User != "" && m.User == w.botUser {
				mine = append(mine, m)
			}
		}
		if !more || params.Cursor == "" {
			break
		}
	}
	return mine, nil
}

// hasButtonValue reports whether m carries a button whose value is value.
func hasButtonValue(m slackapi.Message, value string) bool {
	for _, b := range m.Blocks.BlockSet {
		a, ok := b.(*slackapi.ActionBlock)
		if !ok || a.Elements == nil {
			continue
		}
		for _, el := range a.Elements.ElementSet {
			if btn, ok := el.(*slackapi.ButtonBlockElement); ok && btn.Value == value && !isCancel(btn.ActionID) {
				return true
			}
		}
	}
	return false
}

// upload shares img in the thread in Slack's three steps
// (files.getUploadURLExternal, the upload, files.completeUploadExternal),
// calling guard, if set, before the last, which is the one that shows it.
// It returns the file's id.
func (t *thread) upload(ctx context.Context, img core.Image, name, title, comment string, g func(context.Context) error) (string, error) {
	var u *slackapi.GetUploadURLExternalResponse
	err := t.call(ctx, "files.getUploadURLExternal", func(api *slackapi.Client) (err error) {
		u, err = api.GetUploadURLExternalContext(ctx, slackapi.GetUploadURLExternalParameters{
			FileName: name, FileSize: len(img.Data), AltTxt: core.Truncate(comment, 1000),
		})
		return err
	})
	if err != nil {
		return "", err
	}
	err = t.call(ctx, "upload", func(api *slackapi.Client) error {
		return api.UploadToURL(ctx, slackapi.UploadToURLParameters{
			UploadURL: u.UploadURL, Reader: bytes.NewReader(img.Data), Filename: name,
		})
	})
	if err != nil {
		return "", err
	}
	if err := guard(ctx, g); err != nil {
		return "", err
	}
	return u.FileID, t.call(ctx, "files.completeUploadExternal", func(api *slackapi.Client) error {
		_, err := api.CompleteUploadExternalContext(ctx, slackapi.CompleteUploadExternalParameters{
			Files:           []slackapi.FileSummary{{ID: u.FileID, Title: title}},
			Channel:         t.channel,
			InitialComment:  escape(comment),
			ThreadTimestamp: t.root,
		})
		return err
	})
}

// guard calls g, if set.
func guard(ctx context.Context, g func(context.Context) error) error {
	if g == nil {
		return nil
	}
	return g(ctx)
}

// SetStatus shows status in the thread's status message: posted the first
// time, edited as it changes, deleted when status is "". In a DM, where
// the threads of Slack's assistant pane are, the pane's loading status
// says "Easel is drawing…" meanwhile: the status message stays, because
// it carries the queue position and the Cancel button, and outlasts the
// loading status, which Slack drops after two minutes.
func (t *thread) SetStatus(ctx context.Context, status string) error {
	return t.setStatus(ctx, status, nil)
}

// SetTurnStatus shows status as SetStatus does, with its Cancel buttons.
func (t *thread) SetTurnStatus(ctx context.Context, status string, buttons []core.CancelButton) error {
	return t.setStatus(ctx, status, buttons)
}

// setStatus shows status with buttons, if any.
func (t *thread) setStatus(ctx context.Context, status string, buttons []core.CancelButton) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	opts := []slackapi.MsgOption{slackapi.MsgOptionText(escape(status), false)}
	if len(buttons) > 0 {
		opts = append(opts, slackapi.MsgOptionBlocks(statusBlocks(status, buttons)...))
	}
	switch {
	case status == t.status && slices.Equal(buttons, t.statusButtons):
		return nil
	case status == "":
		ts := t.statusTS
		t.statusTS, t.status, t.statusButtons = "", "", nil
		err := t.call(ctx, "chat.delete", func(api *slackapi.Client) error {
			_, _, err := api.DeleteMessageContext(ctx, t.channel, ts)
			if errorCode(err) == "message_not_found" {
				return nil // someone deleted it already
			}
			return err
		})
		t.assist(ctx, "")
		return err
	case t.statusTS != "":
		err := t.call(ctx, "chat.update", func(api *slackapi.Client) error {
			_, _, _, err := api.UpdateMessageContext(ctx, t.channel, t.statusTS, opts...)
			return err
		})
		if errorCode(err) != "message_not_found" {
			if err == nil {
				t.status, t.statusButtons = status, slices.Clone(buttons)
				t.assist(ctx, assistantStatus) // renewed: Slack drops it after two minutes
			}
			return err
		}
	}
	ts, err := t.post(ctx, opts...)
	if err != nil {
		return err
	}
	t.statusTS, t.status, t.statusButtons = ts, status, slices.Clone(buttons)
	t.assist(ctx, assistantStatus) // after the post, which cleared it
	return nil
}

// Previews reports that a turn shows one partial image: the first.
func (t *thread) Previews() int { return 1 }

// previewName starts the file name of every preview.
const previewName = "easel-preview"

// Preview shows the first partial image of a turn in the thread; later
// partials of the same turn are skipped so the thread is not flooded. The
// preview is deleted when the turn ends (see Finish).
func (t *thread) Preview(ctx context.Context, img core.Image) error {
	t.mu.Lock()
	shown := t.previewed
	t.previewed = true
	t.mu.Unlock()
	if shown {
		return nil
	}
	id, err := t.upload(ctx, img, previewName+img.Ext(), "preview", "👀 a first look while it renders…", nil)
	if id != "" {
		t.mu.Lock()
		t.previewFile = id
		if t.assisting && t.status != "" {
			t.assist(ctx, assistantStatus) // the preview's post cleared it
		}
		t.mu.Unlock()
	}
	return err
}

// previewAge bounds how far back the thread is searched for previews an
// earlier process left.
const previewAge = 24 * time.Hour

// dropPreviews deletes the preview file id ("" for none) and, with sweep,
// every other preview of the bot's in the thread from the last day: those
// an earlier process showed but stopped before deleting. Failures are
// logged; a preview left over is cosmetic.
func (t *thread) dropPreviews(ctx context.Context, id string, sweep bool) {
	var ids []string
	if id != "" {
		ids = append(ids, id)
	}
	if sweep {
		msgs, err := t.history(ctx, time.Now().Add(-previewAge))
		if err != nil {
			t.bot.log.Warn("slack: looking for earlier previews failed", "channel", t.channel, "err", err)
		}
		for _, m := range msgs {
			for _, f := range m.Files {
				if strings.HasPrefix(f.Name, previewName) && !slices.Contains(ids, f.ID) {
					ids = append(ids, f.ID)
				}
			}
		}
	}
	for _, id := range ids {
		if err := t.deleteFile(ctx, id); err != nil {
			t.bot.log.Warn("slack: deleting a preview failed", "channel", t.channel, "file", id, "err", err)
		}
	}
}

// working puts ⏳ on the message ts that asked for a turn, in a goroutine
// of its own, so that recording the turn does not wait for it. The caller
// calls wait before it returns (ctx must last until then); the reaction's
// removal (notWorking, Finish) waits for it first.
func (t *thread) working(ctx context.Context, ts string) (wait func()) {
	done := make(chan struct{})
	t.reactMu.Lock()
	if t.adding == nil {
		t.adding = map[string]chan struct{}{}
	}
	t.adding[ts] = done
	t.reactMu.Unlock()
	go func() {
		defer close(done)
		t.react(ctx, "reactions.add", reactWorking, ts)
		t.reactMu.Lock()
		if t.adding[ts] == done {
			delete(t.adding, ts)
		}
		t.reactMu.Unlock()
	}()
	return func() { <-done }
}

// added waits until ⏳ is on ts, if it is being put there.
func (t *thread) added(ts string) {
	t.reactMu.Lock()
	done := t.adding[ts]
	t.reactMu.Unlock()
	if done != nil {
		<-done
	}
}

// notWorking takes ⏳ off ts again, when its request was not queued.
func (t *thread) notWorking(ctx context.Context, ts string) {
	t.added(ts)
	t.react(ctx, "reactions.remove", reactWorking, ts)
}

// begun notes that this process has just started the thread with its root
// message: no earlier process can have left a preview in it, so the end of
// its first turn need not search it for one (a conversations.replies call
// saved per session).
func (t *thread) begun() {
	t.mu.Lock()
	t.swept = true
	t.mu.Unlock()
}

// Finish deletes the turn's preview, now that its result is posted (and,
// the first time, any preview an earlier process left in the thread), and
// swaps ⏳ on the triggering message for ✅ or ❌.
func (t *thread) Finish(ctx context.Context, source string, ok bool) error {
	t.mu.Lock()
	preview, sweep := t.previewFile, !t.swept
	t.previewed, t.previewFile, t.swept = false, "", true
	t.mu.Unlock()
	t.dropPreviews(ctx, preview, sweep)
	if source == "" {
		return nil
	}
	t.added(source)
	t.react(ctx, "reactions.remove", reactWorking, source)
	mark := reactDone
	if !ok {
		mark = reactFailed
	}
	t.react(ctx, "reactions.add", mark, source)
	return nil
}

// react adds or removes a reaction, logging failures: a missing reaction is
// cosmetic and never fails a turn.
func (t *thread) react(ctx context.Context, method, name, ts string) {
	if ts == "" {
		return
	}
	item := slackapi.NewRefToMessage(t.channel, ts)
	err := t.call(ctx, method, func(api *slackapi.Client) error {
		if method == "reactions.add" {
			return api.AddReactionContext(ctx, name, item)
		}
		return api.RemoveReactionContext(ctx, name, item)
	})
	switch errorCode(err) {
	case "", "already_reacted", "no_reaction":
	default:
		t.bot.log.Warn("slack: reaction failed", "method", method, "name", name, "err", err)
	}
}

// threadCache keeps one thread value per Slack thread.
type threadCache struct {
	mu      sync.Mutex
	threads map[string]*thread
}

// maxThreads bounds the cache; beyond it, threads without a status
// message are forgotten (they are rebuilt on the next use).
const maxThreads = 10000

func newThreadCache() *threadCache { return &threadCache{threads: map[string]*thread{}} }

// thread returns the thread rooted at root in channel of workspace who.
func (b *Bot) thread(who teamID, channel, root string) *thread {
	c := b.threads
	key := threadKey(channel, root)
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.threads[key]; t != nil {
		return t
	}
	if len(c.threads) >= maxThreads {
		c.evictIdle()
	}
	t := &thread{bot: b, who: who, channel: channel, root: root, dm: isDM(channel, "")}
	c.threads[key] = t
	return t
}

// evictIdle forgets the threads that show no status message and are not
// changing it right now.
func (c *threadCache) evictIdle() {
	for key, t := range c.threads {
		if !t.mu.TryLock() {
			continue
		}
		idle := t.statusTS == ""
		t.mu.Unlock()
		if idle {
			delete(c.threads, key)
		}
	}
}
