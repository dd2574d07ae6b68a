package web

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzReason: whatever an error says, its reason in the readiness body is
// valid UTF-8 on one line, with nothing that does not print but spaces,
// within maxReason bytes and an ellipsis.
func FuzzReason(f *testing.F) {
	for _, s := range []string{"", "ok", "bad\n[+]b ok", "\x1b[2J\x00\r\n", "\xff\xfe", strings.Repeat("é", 300), "\u0085\u009b31m", "\u202eevil\u2028next"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := reason(errors.New(s))
		if !utf8.ValidString(r) {
			t.Fatalf("reason(%q) = %q: not UTF-8", s, r)
		}
		if len(r) > maxReason+len("…") {
			t.Fatalf("reason(%q) is %d bytes", s, len(r))
		}
		for _, c := range r {
			if c != ' ' && !unicode.IsPrint(c) {
				t.Fatalf("reason(%q) = %q holds %U", s, r, c)
			}
		}
	})
}
