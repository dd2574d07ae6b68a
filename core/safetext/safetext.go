// Package safetext shows untrusted text (prompts, user and file names, the
// error messages that quote them) without letting it act.
//
// Text typed in a chat can hold characters that do something other than
// show: escape sequences that clear a terminal, retitle its window or plant
// a hyperlink (ESC, the C1 control CSI and the other C0 and C1 controls),
// DEL, and the bidirectional formatting characters with which a
// right-to-left override makes "exe.png" read as "gnp.exe". Each function
// here serves one destination:
//
//   - Terminal and Line escape them visibly, as \x1b or \u202e, so that an
//     operator reading `easel sessions show` or `easel chat` sees that
//     something was there;
//   - Chat drops them from text posted back to a chat platform, where they
//     could only disguise it;
//   - Name keeps only the graphic characters of a name, on one line;
//   - JSON escapes them in JSON text, which still decodes to the same data.
//
// What is stored is always what the user typed: these apply on the way
// out. A backslash is not escaped, so in terminal output `\x1b` may also be
// four characters someone typed; the JSON record tells the two apart.
package safetext

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// bidi reports whether r is a bidirectional formatting character: the
// Arabic letter mark U+061C, the marks U+200E and U+200F, the embeddings and
// overrides U+202A–U+202E and the isolates U+2066–U+2069.
func bidi(r rune) bool {
	switch {
	case r == '\u061c', r == '\u200e', r == '\u200f':
		return true
	case r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069':
		return true
	}
	return false
}

// active reports whether r acts instead of showing: a C0 or C1 control
// character, DEL, or a bidirectional formatting character.
func active(r rune) bool { return unicode.IsControl(r) || bidi(r) }

// Terminal returns text for a terminal with every control character but
// newline and tab, every bidirectional formatting character and every byte
// that is not UTF-8 escaped visibly: ESC as \x1b, CR as \r, the C1 control
// CSI as \u009b, a right-to-left override as \u202e, a stray byte 0x9b as
// \x9b. Use it for output whose line breaks are legitimate, such as a reply
// of several lines; a single field or line takes Line.
func Terminal(s string) string { return escape(s, "\n\t") }

// Line is Terminal for one line of output: newline and tab are escaped too
// (as \n and \t), so that text cannot start what would look like a line of
// its own or break up a table's columns.
func Line(s string) string { return escape(s, "") }

// escape writes the active characters of s, except those in keep, and its
// invalid bytes as escapes.
func escape(s, keep string) string {
	if clean(s, keep) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case !active(r) || strings.ContainsRune(keep, r):
			b.WriteString(s[i : i+size])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < utf8.RuneSelf:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += size
	}
	return b.String()
}

// clean reports whether s is valid UTF-8 with no active character outside
// keep, so that escape has nothing to do.
func clean(s, keep string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if active(r) && !strings.ContainsRune(keep, r) {
			return false
		}
	}
	return true
}

// Chat returns text to post to a chat platform with its control characters
// (newline and tab excepted) and bidirectional formatting characters
// removed, and bytes that are not UTF-8 replaced by U+FFFD. Right-to-left
// text still reads right to left: its direction comes from its letters,
// which the platforms' renderers order by the Unicode bidirectional
// algorithm; what goes is the means to override them.
func Chat(s string) string {
	return strings.Map(func(r rune) rune {
		if active(r) && r != '\n' && r != '\t' {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\ufffd"))
}

// Name returns a name on one line, to show in a message or a log line:
// white space (newlines and tabs included) becomes a space; control, format
// (bidirectional among them) and other characters that do not show are
// removed; bytes that are not UTF-8 become U+FFFD.
func Name(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case unicode.IsGraphic(r):
			return r
		case unicode.IsSpace(r):
			return ' '
		}
		return -1
	}, strings.ToValidUTF8(s, "\ufffd"))
}

// JSON returns JSON text b with DEL, the C1 control characters and the
// bidirectional formatting characters written as \u escapes. encoding/json
// escapes the C0 controls but writes those raw, and a terminal acts on
// them; a JSON decoder reads the escapes back as the same characters, so
// the data is unchanged. Outside its strings JSON holds none of these
// characters, so b may be any JSON text; bytes in it that are not UTF-8
// become \ufffd, as encoding/json would have written them.
func JSON(b []byte) []byte {
	var out []byte // nil while nothing needed escaping
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		// The C0 controls are escaped already: valid JSON holds them raw
		// only as white space between its tokens.
		esc := r == utf8.RuneError && size == 1 || r >= '\x7f' && active(r)
		if esc && out == nil {
			out = append(make([]byte, 0, len(b)+16), b[:i]...)
		}
		switch {
		case esc:
			out = fmt.Appendf(out, `\u%04x`, r)
		case out != nil:
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	if out == nil {
		return b
	}
	return out
}
