package core

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

var testLimits = Limits{MaxN: 4, MaxPromptChars: 32000}

func TestParsePrompt(t *testing.T) {
	seed := int64(42)
	tests := []struct {
		in     string
		prompt string
		flags  Flags
	}{
		{"a red fox", "a red fox", Flags{}},
		{"  a red fox  ", "a red fox", Flags{}},
		{"a poster --ar 16:9", "a poster", Flags{Aspect: "16:9", Size: "1360x768"}},
		{"a poster —ar 1:1 —quality high", "a poster", Flags{Aspect: "1:1", Size: "1024x1024", Quality: "high"}},
		{"a poster --size 1536x1024 --n 2", "a poster", Flags{Size: "1536x1024", N: 2}},
		{"a poster --size 1536×1024", "a poster", Flags{Size: "1536x1024"}},
		{"logo --transparent --format webp", "logo", Flags{Transparent: true, Format: "webp"}},
		{"logo --format JPG", "logo", Flags{Format: "jpeg"}},
		{"cat --seed 42 --model gpt-image-1.5 --provider OpenAI", "cat", Flags{Seed: &seed, Model: "gpt-image-1.5", Provider: "openai"}},
		{`cat --no "text, watermarks" --n 1`, "cat", Flags{Avoid: "text, watermarks", N: 1}},
		{`cat --no text watermarks`, "cat", Flags{Avoid: "text watermarks"}},
		{"cat --no “people” --quality=low", "cat", Flags{Avoid: "people", Quality: "low"}},
		{"a poster --ar 160000:90000", "a poster", Flags{Aspect: "160000:90000", Size: "1360x768"}},
		{"the text — an em dash alone -- or a double dash stays", "the text — an em dash alone -- or a double dash stays", Flags{}},
		{"well-known--ar is not a flag mid-word", "well-known--ar is not a flag mid-word", Flags{}},
	}
	for _, tt := range tests {
		prompt, flags, err := ParsePrompt(tt.in, testLimits)
		if err != nil {
			t.Errorf("ParsePrompt(%q): %v", tt.in, err)
			continue
		}
		if prompt != tt.prompt {
			t.Errorf("ParsePrompt(%q) prompt = %q, want %q", tt.in, prompt, tt.prompt)
		}
		if got, want := flagString(flags), flagString(tt.flags); got != want {
			t.Errorf("ParsePrompt(%q) flags = %s, want %s", tt.in, got, want)
		}
	}
}

func flagString(f Flags) string {
	s := strings.Join([]string{f.Aspect, f.Size, f.Quality, f.Model, f.Provider, f.Format, f.Avoid}, "|")
	if f.Seed != nil {
		s += "|seed"
	}
	if f.Transparent {
		s += "|transparent"
	}
	return s + "|" + string(rune('0'+f.N))
}

func TestParsePromptErrors(t *testing.T) {
	tests := []struct {
		in   string
		want string // substring of the message
	}{
		{"", "prompt is empty"},
		{"   --ar 16:9", "prompt is empty"},
		{strings.Repeat("x", 40000), "40000 characters long; the limit is 32000"},
		{"fox --foo 1", "unknown flag --foo; the flags are --ar, --size"},
		{"fox --n 99", "--n 99 is not allowed: use a number from 1 to 4"},
		{"fox --n 0", "from 1 to 4"},
		{"fox --n two", "--n two is not allowed"},
		{"fox --ar 1:9", "--ar 1:9 is outside the supported range: the aspect ratio must be between 1:3 and 3:1"},
		{"fox --ar wide", "--ar wide is not an aspect ratio"},
		{"fox --ar", "--ar needs a value"},
		{"fox --ar --n 2", "--ar needs a value"},
		{"fox --quality ultra", "--quality ultra is not allowed: use low, medium, high or auto"},
		{"fox --format gif", "--format gif is not allowed: use png, webp or jpeg"},
		{"fox --size 1000x1000", "divisible by 16"},
		{"fox --size 4096x1024", "between 64 and 3840"},
		{"fox --size 3840x3840", "too large"},
		{"fox --size 3200x1024", "between 1:3 and 3:1"},
		{"fox --size big", "is not a size"},
		{"fox --seed -1", "--seed -1 is not allowed: use a whole number from 0 to 9223372036854775807"},
		{"fox --seed 9223372036854775808", "--seed 9223372036854775808 is not allowed: use a whole number from 0 to 9223372036854775807"},
		{"fox --seed 18446744073709551616", "from 0 to 9223372036854775807"},
		{"fox --size 100000x100000", "--size 100000x100000: each edge must be between 64 and 3840 pixels"},
		{"fox --size 99999999999999999999x1024", "each edge must be between 64 and 3840 pixels"},
		{"fox --size 3841x1024", "each edge must be between 64 and 3840 pixels"},
		{"fox --size -1024x1024", "is not a size"},
		{"fox --ar 300001:100000", "--ar 300001:100000 is outside the supported range"},
		{"fox --ar 99999999999999999999:1", "outside the supported range"},
		{"fox --ar 0:1", "is not an aspect ratio"},
		{"fox --n 1 --n 2", "--n is given twice"},
		{"fox --ar 16:9 --size 1024x1024", "either --ar or --size"},
		{"fox --transparent --format jpeg", "--transparent needs --format png or webp"},
		{"fox --transparent=yes", "--transparent takes no value"},
		{`fox --no "unclosed`, "quote in the flags is not closed"},
		{"fox --model ../../etc", "not a valid name"},
	}
	for _, tt := range tests {
		_, _, err := ParsePrompt(tt.in, testLimits)
		if err == nil {
			t.Errorf("ParsePrompt(%.40q) succeeded, want error containing %q", tt.in, tt.want)
			continue
		}
		if KindOf(err) != Invalid {
			t.Errorf("ParsePrompt(%.40q) error kind = %s, want invalid", tt.in, KindOf(err))
		}
		if msg := UserMessage(err, "ref"); !strings.Contains(msg, tt.want) {
			t.Errorf("ParsePrompt(%.40q) error = %q, want it to contain %q", tt.in, msg, tt.want)
		}
	}
}

// TestNIsRefusedWithTheConfiguredLimit checks that every refused --n names
// the largest n the limits allow, whatever they are.
func TestNIsRefusedWithTheConfiguredLimit(t *testing.T) {
	for _, maxN := range []int{1, 4, 10} {
		lim := Limits{MaxN: maxN}
		for _, n := range []string{"0", "-1", strconv.Itoa(maxN + 1), "99999999999999999999", "two"} {
			_, _, err := ParsePrompt("fox --n "+n, lim)
			want := fmt.Sprintf("--n %s is not allowed: use a number from 1 to %d", n, maxN)
			if msg := UserMessage(err, "ref"); msg != want {
				t.Errorf("max n %d: ParsePrompt(fox --n %s) = %q, want %q", maxN, n, msg, want)
			}
		}
		if _, f, err := ParsePrompt("fox --n "+strconv.Itoa(maxN), lim); err != nil || f.N != maxN {
			t.Errorf("max n %d: --n %d refused: %v", maxN, maxN, err)
		}
	}
}

func TestSizeForAspect(t *testing.T) {
	for _, ar := range [][2]int{{1, 1}, {16, 9}, {9, 16}, {3, 1}, {1, 3}, {4, 3}, {21, 9}} {
		size := SizeForAspect(ar[0], ar[1])
		if err := CheckSize(size); err != nil {
			t.Errorf("SizeForAspect(%d:%d) = %s, which CheckSize rejects: %v", ar[0], ar[1], size, err)
		}
		w, h, _ := ParseSize(size)
		got, want := float64(w)/float64(h), float64(ar[0])/float64(ar[1])
		if got/want > 1.03 || want/got > 1.03 {
			t.Errorf("SizeForAspect(%d:%d) = %s, aspect %.3f, want about %.3f", ar[0], ar[1], size, got, want)
		}
	}
}

func TestHighQualitySize(t *testing.T) {
	tests := []struct {
		w, h int
		want string
	}{
		{1024, 1024, "2048x2048"},
		{1536, 1024, "2048x1360"},
		{1360, 768, "2048x1152"},
		{3840, 2160, "3840x2160"},
		{512, 512, "1024x1024"},
		{0, 0, ""},
	}
	for _, tt := range tests {
		got := HighQualitySize(tt.w, tt.h)
		if got != tt.want {
			t.Errorf("HighQualitySize(%d, %d) = %s, want %s", tt.w, tt.h, got, tt.want)
		}
		if got != "" {
			if err := CheckSize(got); err != nil {
				t.Errorf("HighQualitySize(%d, %d) = %s: %v", tt.w, tt.h, got, err)
			}
		}
	}
}

func TestFlagsInherit(t *testing.T) {
	seed := int64(1)
	base := Flags{Size: "1536x1024", Aspect: "3:2", Quality: "high", Model: "m", Provider: "p", Format: "webp", Transparent: true, N: 3, Seed: &seed, Avoid: "text"}
	got := Flags{Quality: "low"}.Inherit(base)
	if got.Size != "1536x1024" || got.Quality != "low" || got.Model != "m" || got.Provider != "p" || got.Format != "webp" || !got.Transparent || got.Avoid != "text" {
		t.Errorf("Inherit = %+v", got)
	}
	if got.N != 0 || got.Seed != nil {
		t.Errorf("Inherit carried N or Seed over: %+v", got)
	}
}

func FuzzParsePrompt(f *testing.F) {
	for _, s := range []string{"a fox --ar 16:9", `x --no "a b" --n 2`, "—ar 3:2", "x --size 1024x1024 --transparent"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		prompt, _, err := ParsePrompt(s, testLimits)
		if err == nil && strings.TrimSpace(prompt) == "" {
			t.Errorf("ParsePrompt(%q) accepted an empty prompt", s)
		}
		if err != nil && KindOf(err) != Invalid {
			t.Errorf("ParsePrompt(%q) error kind %s", s, KindOf(err))
		}
	})
}

// A flag's value of any length is quoted shortened in its error, so the
// message fits a chat message.
func TestLongFlagValuesAreShortenedInErrors(t *testing.T) {
	long := strings.Repeat("ü", 6000)
	for _, flag := range []string{"--ar", "--quality", "--n", "--model", "--provider", "--format", "--seed", "--style"} {
		_, _, err := ParsePrompt("a fox "+flag+" "+long, Limits{MaxN: 4})
		if KindOf(err) != Invalid || len(err.Error()) > 300 {
			t.Errorf("%s with 6000 characters: %d-byte error %.80q", flag, len(err.Error()), err)
		}
	}
}
