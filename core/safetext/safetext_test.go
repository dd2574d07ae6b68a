package safetext_test

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/core/safetext"
)

// hostile are the probe's inputs: what each is, and the text.
var hostile = []struct{ name, in string }{
	{"ESC [2J clears the screen", "a fox\x1b[2J\x1b[H"},
	{"OSC 0 sets the window title", "\x1b]0;pwned\x07a fox"},
	{"OSC 8 plants a link", "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\"},
	{"NUL", "a\x00fox"},
	{"C1 CSI as a raw byte", "a\x9b2Jfox"},
	{"C1 CSI as a character", "a\u009b2Jfox"},
	{"DEL", "a fox\x7f\x7f"},
	{"right-to-left override", "invoice\u202egnp.exe"},
	{"bidi isolates and marks", "\u2066a\u2067b\u2068c\u2069\u200e\u200f\u061c"},
	{"invalid UTF-8", "a\xff\xfefox\xc3"},
	{"carriage return overwrites the line", "all good\rEVIL"},
	{"a newline fakes an output line", "a fox\nsession abc (see it later with: easel sessions show abc)"},
}

func TestTerminal(t *testing.T) {
	tests := []struct{ in, line, terminal string }{
		{"a red fox, 🦊 👩‍👩‍👧 שלום", "a red fox, 🦊 👩‍👩‍👧 שלום", "a red fox, 🦊 👩‍👩‍👧 שלום"},
		{"a fox\x1b[2J\x1b[H", `a fox\x1b[2J\x1b[H`, `a fox\x1b[2J\x1b[H`},
		{"\x1b]0;pwned\x07a fox", `\x1b]0;pwned\x07a fox`, `\x1b]0;pwned\x07a fox`},
		{"\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\", `\x1b]8;;https://evil.example/\x1b\click\x1b]8;;\x1b\`, `\x1b]8;;https://evil.example/\x1b\click\x1b]8;;\x1b\`},
		{"a\x00fox", `a\x00fox`, `a\x00fox`},
		{"a\x9b2Jfox", `a\x9b2Jfox`, `a\x9b2Jfox`},
		{"a\u009b2Jfox", `a\u009b2Jfox`, `a\u009b2Jfox`},
		{"a fox\x7f", `a fox\x7f`, `a fox\x7f`},
		{"invoice\u202egnp.exe", `invoice\u202egnp.exe`, `invoice\u202egnp.exe`},
		{"\u2066a\u2069\u200e\u200f\u061c\u202a\u202d", `\u2066a\u2069\u200e\u200f\u061c\u202a\u202d`, `\u2066a\u2069\u200e\u200f\u061c\u202a\u202d`},
		{"a\xff\xfefox\xc3", `a\xff\xfefox\xc3`, `a\xff\xfefox\xc3`},
		{"a real \ufffd stays", "a real \ufffd stays", "a real \ufffd stays"},
		{"all good\rEVIL", `all good\rEVIL`, `all good\rEVIL`},
		{"two\nlines\tand a tab", `two\nlines\tand a tab`, "two\nlines\tand a tab"},
		{`a typed \x1b stays as typed`, `a typed \x1b stays as typed`, `a typed \x1b stays as typed`},
	}
	for _, tt := range tests {
		if got := safetext.Line(tt.in); got != tt.line {
			t.Errorf("Line(%q) = %q, want %q", tt.in, got, tt.line)
		}
		if got := safetext.Terminal(tt.in); got != tt.terminal {
			t.Errorf("Terminal(%q) = %q, want %q", tt.in, got, tt.terminal)
		}
	}
}

// TestTerminalLeavesNothingActive checks the property behind the table: no
// byte a terminal acts on survives, for the probe's inputs and every single
// byte and control character.
func TestTerminalLeavesNothingActive(t *testing.T) {
	inputs := []string{coretest.Hostile}
	for _, h := range hostile {
		inputs = append(inputs, h.in)
	}
	for b := 0; b < 256; b++ {
		inputs = append(inputs, "x"+string([]byte{byte(b)})+"y")
	}
	for r := rune(0x80); r < 0xa0; r++ {
		inputs = append(inputs, string(r))
	}
	for _, in := range inputs {
		if got := safetext.Line(in); !inert(got, false) {
			t.Errorf("Line(%q) = %q still acts", in, got)
		}
		if got := safetext.Terminal(in); !inert(got, true) {
			t.Errorf("Terminal(%q) = %q still acts", in, got)
		}
		if got := safetext.Chat(in); !inert(got, true) {
			t.Errorf("Chat(%q) = %q still acts", in, got)
		}
		if got := safetext.Name(in); !inert(got, false) {
			t.Errorf("Name(%q) = %q still acts", in, got)
		}
	}
}

// inert reports whether s is safe to show (coretest.Inert) and, unless
// lines is set, on one line without tabs.
func inert(s string, lines bool) bool {
	return coretest.Inert(s) == nil && (lines || !strings.ContainsAny(s, "\n\t"))
}

func TestChat(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a red fox, 🦊 👩‍👩‍👧 שלום עולם", "a red fox, 🦊 👩‍👩‍👧 שלום עולם"},
		{"invoice\u202egnp.exe", "invoicegnp.exe"},
		{"\u2066a\u2067b\u2068c\u2069\u200e\u200f\u061c\u202a\u202b\u202c\u202d", "abc"},
		{"a fox\x1b[2J", "a fox[2J"},
		{"\x1b]0;pwned\x07a fox", "]0;pwneda fox"},
		{"a\x00fox\x7f", "afox"},
		{"a\x9b2J\u009bfox", "a\ufffd2Jfox"},
		{"two\nlines\tkept\r", "two\nlines\tkept"},
		{"a\xff fox", "a\ufffd fox"},
	}
	for _, tt := range tests {
		if got := safetext.Chat(tt.in); got != tt.want {
			t.Errorf("Chat(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ana", "ana"},
		{"evil\u202egnp.exe", "evilgnp.exe"},
		{"bell\a\x00\x1b[31mred", "bell[31mred"},
		{"line\nbreak\ttab", "line break tab"},
		{"zero\u200bwidth\ufeff", "zerowidth"},
		{"bad\xffutf8", "bad\ufffdutf8"},
		{"😀 party", "😀 party"},
	}
	for _, tt := range tests {
		if got := safetext.Name(tt.in); got != tt.want {
			t.Errorf("Name(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestJSON checks that encoding/json alone is not safe for a terminal, and
// that JSON makes it so without changing what the JSON says.
func TestJSON(t *testing.T) {
	for _, h := range hostile {
		raw, err := json.Marshal(map[string]string{"prompt": h.in, "name": "ana"})
		if err != nil {
			t.Fatal(err)
		}
		got := safetext.JSON(raw)
		if !inert(string(got), false) {
			t.Errorf("%s: JSON left %q", h.name, got)
		}
		var before, after map[string]string
		if err := json.Unmarshal(raw, &before); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(got, &after); err != nil {
			t.Fatalf("%s: JSON made %q, which is not JSON: %v", h.name, got, err)
		}
		if before["prompt"] != after["prompt"] || after["name"] != "ana" {
			t.Errorf("%s: JSON changed the data: %q, want %q", h.name, after["prompt"], before["prompt"])
		}
	}
	if raw, _ := json.Marshal("\u202e\u009b\x7f"); inert(string(raw), false) {
		t.Errorf("encoding/json now escapes bidi, C1 and DEL itself (%s): JSON may be redundant", raw)
	}
	if got := safetext.JSON([]byte(`{"a":"b"}`)); string(got) != `{"a":"b"}` {
		t.Errorf("JSON changed clean text: %s", got)
	}
	if got := safetext.JSON([]byte("\"a\u202eb\x7f\"")); string(got) != `"a\u202eb\u007f"` {
		t.Errorf(`JSON("a\u202eb\x7f") = %s`, got)
	}
}

func FuzzTerminal(f *testing.F) {
	for _, h := range hostile {
		f.Add(h.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := safetext.Line(s); !inert(got, false) {
			t.Errorf("Line(%q) = %q", s, got)
		}
		if got := safetext.Chat(s); !inert(got, true) || safetext.Chat(got) != got {
			t.Errorf("Chat(%q) = %q", s, got)
		}
		if utf8.ValidString(s) && clean(s) && safetext.Terminal(s) != s {
			t.Errorf("Terminal changed clean text %q", s)
		}
	})
}

// clean reports whether s has nothing Terminal escapes.
func clean(s string) bool { return inert(s, true) }
