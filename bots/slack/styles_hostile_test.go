package slack

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/easel-bot/easel/core/coretest"
)

// inert fails the test unless an answer acts on nothing and pings,
// mentions or links nothing but the setters it names.
func inert(t *testing.T, what, text string) {
	t.Helper()
	if err := coretest.Inert(text); err != nil {
		t.Errorf("%s: %v", what, err)
	}
	for _, active := range []string{"<@" + bob, "<!channel", "<!here", "<!everyone", "<http", "<mailto", "<#"} {
		if strings.Contains(text, active) {
			t.Errorf("%s %q holds %s…>", what, text, active)
		}
	}
}

// Very long input is refused with a short answer that quotes little of
// it, or, for words within the limit, shown cut short.
func TestStyleCommandLongInput(t *testing.T) {
	h := styled(t, options{})
	long := strings.Repeat("a", 5000)
	for _, c := range []struct{ text, want string }{
		{long, "takes list, set, delete or channel"},
		{"set " + long, "is not a style name"},
		{"set big " + long, "the style's words are 5000 characters long; the limit is 1000"},
		{"delete " + long, "there is no style named"},
		{"channel " + long, "channel defaults are flags"},
		{"channel --style " + long, "is not a style name"},
	} {
		answer := h.style(ana, "C1", c.text)
		has(t, "answer", answer, "❌", c.want)
		if len(answer) > 1500 {
			t.Errorf("the answer to %.20q… is %d bytes long", c.text, len(answer))
		}
		inert(t, "answer", answer)
	}
	words := strings.TrimSpace(strings.Repeat("word ", 190))
	has(t, "set", h.style(ana, "C1", "set big "+words), "✅ Style *big* created")
	list := h.style(bob, "C1", "list")
	if i := strings.Index(list, "• *big*: `"); i < 0 || !strings.Contains(list[i:], "…` · set by") || len(list) > 1000 {
		t.Errorf("list %q, want the long style cut short", list)
	}
	h.quiet("C1")
}

// Control characters and escape sequences in names and words, and
// mentions, @channel pings and links in words, all show inert: in the
// answers, in the list and in what --style makes; the provider still gets
// the words as they were typed.
func TestStyleCommandHostileText(t *testing.T) {
	h := styled(t, options{})
	for _, c := range []struct{ text, want string }{
		{"set bad\x1b[2Jname words", "is not a style name"},
		{"set na\u202eme\x00 words", "is not a style name"},
		{"set &lt;@" + bob + "&gt; words", "is not a style name"},
		{"delete &lt;!channel&gt;", "there is no style named"},
		{"channel --style &lt;https://evil.example|click&gt;", "is not a style name"},
		{"\u202eteg", "takes list, set, delete or channel"},
	} {
		answer := h.style(ana, "C1", c.text)
		has(t, "answer", answer, "❌", c.want)
		inert(t, "answer to "+c.text, answer)
	}

	// As Slack sends what was typed: & < > escaped.
	ping := "hello &lt;@" + bob + "&gt; &lt;!channel&gt; &lt;!here&gt; &lt;https://evil.example|click&gt; `code` *bold*"
	for _, text := range []string{"set ping " + ping, "set evil " + coretest.Hostile, "set ping " + ping + " --quality low"} {
		answer := h.style(ana, "C1", text)
		has(t, "answer", answer, "✅ Style")
		inert(t, "answer to "+text, answer)
	}
	list := h.style(bob, "C1", "list")
	has(t, "list", list, "• *ping*: `hello &lt;@"+bob+"&gt; &lt;!channel&gt; &lt;!here&gt; &lt;https://evil.example|click&gt; ˋcodeˋ *bold* --quality low`")
	inert(t, "list", list)

	h.slash(ana, "C1", "a fox --style ping")
	h.images(1)
	h.slash(ana, "C1", "a cat --style evil")
	h.images(2)
	reqs := h.gen.Requests()
	if want := "a fox, hello <@" + bob + "> <!channel> <!here> <https://evil.example|click> `code` *bold*"; reqs[0].Prompt != want {
		t.Errorf("the provider got %q, want %q", reqs[0].Prompt, want)
	}
	if !strings.HasPrefix(reqs[1].Prompt, "a cat, a fox\x1b[2J") {
		t.Errorf("the provider got %q, want the words as typed", reqs[1].Prompt)
	}
	for _, m := range h.fake.Messages("C1") {
		inert(t, "message", m.Text)
	}
	for _, u := range h.fake.Uploads() {
		inert(t, "caption", u.InitialComment)
	}
}

// A flood of 200 lists at once: each acknowledged within Slack's 3
// seconds, each answered once, to its asker.
func TestStyleCommandFlood(t *testing.T) {
	h := styled(t, options{})
	h.fake.WaitTimeout = 2 * time.Minute
	const n = 200
	users := make([]string, n)
	ids := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		users[i] = fmt.Sprintf("UFLOOD%03d", i)
		env := h.fake.Slash(StyleCommand, users[i], "C1", "list")
		wg.Go(func() {
			<-start
			ids[i] = h.fake.Send(t, env)
		})
	}
	close(start)
	wg.Wait()
	lat := make([]time.Duration, n)
	for i, id := range ids {
		lat[i] = h.fake.WaitAck(t, id).Latency
	}
	slices.Sort(lat)
	t.Logf("%d concurrent %s: ack p50 %s, max %s", n, StyleCommand, lat[n/2], lat[n-1])
	if lat[n-1] > 3*time.Second {
		t.Errorf("an ack took %s: past Slack's 3 s deadline", lat[n-1])
	}
	h.fake.WaitFor(t, "every answer", func() bool { return len(h.fake.Ephemerals()) >= n })
	h.settle()
	got := map[string]int{}
	for _, e := range h.fake.Ephemerals() {
		if !strings.Contains(e.Text, "• *brand*") {
			t.Errorf("answer %q", e.Text)
		}
		got[e.User]++
	}
	for _, u := range users {
		if got[u] != 1 {
			t.Errorf("%s got %d answers, want 1", u, got[u])
		}
	}
	h.quiet("C1")
}
