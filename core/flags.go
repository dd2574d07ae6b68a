package core

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits bound what a prompt may ask for.
type Limits struct {
	MaxN           int // largest --n; 0 means 1
	MaxPromptChars int // longest prompt, in characters; 0 means no limit
}

// Limits returns the limits e checks prompts against, for an adapter that
// checks a prompt with ParsePrompt before it posts anything: its messages
// then name the limits Handle would.
func (e *Engine) Limits() Limits { return e.cfg.Limits }

// Size limits shared by every provider (the GPT image models' limits, which
// are the widest): edges divisible by 16, aspect between 1:3 and 3:1, at most
// 3840 pixels per edge and 3840x2160 pixels in total.
const (
	maxEdge   = 3840
	minEdge   = 64
	maxPixels = 3840 * 2160
	maxAspect = 3.0
	maxSeed   = math.MaxInt64
)

var flagNames = []string{"--ar", "--size", "--quality", "--n", "--model", "--provider", "--transparent", "--format", "--seed", "--no", "--region", "--strict-region", "--style"}

// ParsePrompt splits a message into its prompt and its trailing flags
// (see Flags): everything from the first "--flag" on is flags. An em dash
// ("—ar", as phones and macOS autocorrect "--") counts as "--". It returns an
// Invalid *Error naming the flag and its allowed values for anything it
// cannot accept, and for an empty or over-long prompt.
func ParsePrompt(text string, lim Limits) (string, Flags, error) {
	prompt, rest := splitFlags(text)
	prompt = strings.TrimSpace(prompt)
	var f Flags
	if rest != "" {
		var err error
		if f, err = parseFlags(rest, lim); err != nil {
			return "", Flags{}, err
		}
	}
	if prompt == "" {
		return "", Flags{}, Errorf(Invalid, "the prompt is empty: describe the image you want, e.g. `a lighthouse at dusk, watercolour --ar 16:9`")
	}
	if n := utf8.RuneCountInString(prompt); lim.MaxPromptChars > 0 && n > lim.MaxPromptChars {
		return "", Flags{}, PromptTooLong(n, lim.MaxPromptChars)
	}
	return prompt, f, nil
}

// PromptTooLong returns the Invalid *Error that refuses a prompt of chars
// characters, over limit: ParsePrompt's answer, and an adapter's to a
// message too long to read whole.
func PromptTooLong(chars, limit int) error {
	return Errorf(Invalid, "the prompt is %d characters long; the limit is %d", chars, limit)
}

// splitFlags returns text before the first flag and the flags part.
func splitFlags(text string) (prompt, flags string) {
	prev := ' '
	for i, r := range text {
		if unicode.IsSpace(prev) && isFlagStart(text[i:]) {
			return text[:i], text[i:]
		}
		prev = r
	}
	return text, ""
}

// isFlagStart reports whether s starts with "--x" or "—x" for a letter x.
func isFlagStart(s string) bool {
	var rest string
	switch {
	case strings.HasPrefix(s, "--"):
		rest = s[2:]
	case strings.HasPrefix(s, "—"):
		rest = s[len("—"):]
	default:
		return false
	}
	r, _ := utf8.DecodeRuneInString(rest)
	return r < utf8.RuneSelf && unicode.IsLetter(r)
}

func parseFlags(s string, lim Limits) (Flags, error) {
	toks, err := tokenize(s)
	if err != nil {
		return Flags{}, err
	}
	var f Flags
	seen := map[string]bool{}
	for i := 0; i < len(toks); i++ {
		tok := toks[i]
		if !isFlagStart(tok) {
			return Flags{}, Errorf(Invalid, "unexpected %q after the flags: put flags at the end of the prompt, after the text", tok)
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(tok, "--"), "—"), "=")
		name = strings.ToLower(name)
		flag := "--" + name
		if seen[name] {
			return Flags{}, Errorf(Invalid, "%s is given twice", flag)
		}
		seen[name] = true
		if name == "strict-region" {
			// A switch: alone it is on; "=off" (or a following on/off)
			// overrides a configured default.
			if !hasValue && i+1 < len(toks) && isSwitchValue(toks[i+1]) {
				value, hasValue = toks[i+1], true
				i++
			}
			on := true
			if hasValue {
				v, ok := switchValue(value)
				if !ok {
					return Flags{}, Errorf(Invalid, "--strict-region %s is not allowed: use --strict-region alone (on) or --strict-region=off", quoteValue(value))
				}
				on = v
			}
			f.StrictRegion = &on
			continue
		}
		if name == "transparent" {
			if hasValue {
				return Flags{}, Errorf(Invalid, "--transparent takes no value")
			}
			f.Transparent = true
			continue
		}
		if !knownFlag(flag) {
			return Flags{}, Errorf(Invalid, "unknown flag %s; the flags are %s", flag, strings.Join(flagNames, ", "))
		}
		if !hasValue {
			if name == "no" {
				// --no takes words up to the next flag.
				j := i + 1
				for j < len(toks) && !isFlagStart(toks[j]) {
					j++
				}
				value, hasValue = strings.Join(toks[i+1:j], " "), j > i+1
				i = j - 1
			} else if i+1 < len(toks) && !isFlagStart(toks[i+1]) {
				value, hasValue = toks[i+1], true
				i++
			}
		}
		if !hasValue || value == "" {
			return Flags{}, Errorf(Invalid, "%s needs a value: %s", flag, flagHelp(name))
		}
		if err := f.set(name, value, lim); err != nil {
			return Flags{}, err
		}
	}
	if seen["ar"] && seen["size"] {
		return Flags{}, Errorf(Invalid, "use either --ar or --size, not both")
	}
	if f.Transparent && f.Format == "jpeg" {
		return Flags{}, Errorf(Invalid, "--transparent needs --format png or webp; JPEG has no transparency")
	}
	return f, nil
}

func knownFlag(flag string) bool {
	for _, n := range flagNames {
		if n == flag {
			return true
		}
	}
	return false
}

func flagHelp(name string) string {
	switch name {
	case "ar":
		return "an aspect ratio such as 16:9, between 1:3 and 3:1"
	case "size":
		return "WIDTHxHEIGHT such as 1536x1024, edges divisible by 16"
	case "quality":
		return "one of low, medium, high, auto"
	case "n":
		return "how many images, e.g. 2"
	case "format":
		return "one of png, webp, jpeg"
	case "seed":
		return "a whole number such as 42"
	case "no":
		return `the things to avoid, e.g. --no "text, watermarks"`
	case "region":
		return regionHelp()
	case "style":
		return "a style's name; the styles command lists them"
	default:
		return "a name"
	}
}

// set assigns one flag's value.
func (f *Flags) set(name, value string, lim Limits) error {
	shown := truncate(value, 40) // what an error quotes of the value
	switch name {
	case "ar":
		w, h, ok := parsePair(value, ":")
		if !ok {
			return Errorf(Invalid, "--ar %s is not an aspect ratio: use W:H such as 16:9", shown)
		}
		if r := float64(w) / float64(h); r > maxAspect || r < 1/maxAspect {
			return Errorf(Invalid, "--ar %s is outside the supported range: the aspect ratio must be between 1:3 and 3:1", shown)
		}
		f.Aspect, f.Size = value, SizeForAspect(w, h)
	case "size":
		value = strings.ReplaceAll(strings.ToLower(value), "×", "x")
		if err := CheckSize(value); err != nil {
			return err
		}
		f.Size = value
	case "quality":
		v := strings.ToLower(value)
		if v != "low" && v != "medium" && v != "high" && v != "auto" {
			return Errorf(Invalid, "--quality %s is not allowed: use low, medium, high or auto", shown)
		}
		f.Quality = v
	case "n":
		n, err := strconv.Atoi(value)
		maxN := max(lim.MaxN, 1)
		if err != nil || n < 1 || n > maxN {
			return Errorf(Invalid, "--n %s is not allowed: use a number from 1 to %d", shown, maxN)
		}
		f.N = n
	case "model", "provider":
		if !validName(value) {
			return Errorf(Invalid, "--%s %q is not a valid name", name, shown)
		}
		if name == "model" {
			f.Model = value
		} else {
			f.Provider = strings.ToLower(value)
		}
	case "format":
		v := strings.ToLower(value)
		if v == "jpg" {
			v = "jpeg"
		}
		if v != "png" && v != "webp" && v != "jpeg" {
			return Errorf(Invalid, "--format %s is not allowed: use png, webp or jpeg", shown)
		}
		f.Format = v
	case "seed":
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n < 0 {
			return Errorf(Invalid, "--seed %s is not allowed: use a whole number from 0 to %d", shown, maxSeed)
		}
		f.Seed = &n
	case "no":
		f.Avoid = value
	case "region":
		_, spelling, err := ParseRegion(value)
		if err != nil {
			return err
		}
		f.Region = spelling
	case "style":
		n, err := StyleName(value)
		if err != nil {
			return err
		}
		f.Style = n
	}
	return nil
}

// String spells the flags f sets as they are typed, in a fixed order:
// "--ar 16:9 --quality high".
func (f Flags) String() string {
	var out []string
	add := func(flag, value string) {
		if value == "" {
			return
		}
		if strings.ContainsAny(value, " \t") {
			value = strconv.Quote(value)
		}
		out = append(out, flag+" "+value)
	}
	add("--style", f.Style)
	if f.Aspect != "" {
		add("--ar", f.Aspect)
	} else {
		add("--size", f.Size)
	}
	add("--quality", f.Quality)
	if f.N != 0 {
		add("--n", strconv.Itoa(f.N))
	}
	add("--model", f.Model)
	add("--provider", f.Provider)
	if f.Transparent {
		out = append(out, "--transparent")
	}
	add("--format", f.Format)
	if f.Seed != nil {
		add("--seed", strconv.FormatInt(*f.Seed, 10))
	}
	add("--no", f.Avoid)
	add("--region", f.Region)
	if f.StrictRegion != nil {
		out = append(out, map[bool]string{true: "--strict-region", false: "--strict-region=off"}[*f.StrictRegion])
	}
	return strings.Join(out, " ")
}

// isSwitchValue reports whether s is a value a switch flag takes.
func isSwitchValue(s string) bool {
	_, ok := switchValue(s)
	return ok
}

// switchValue reads on/off, true/false, yes/no.
func switchValue(s string) (on, ok bool) {
	switch strings.ToLower(s) {
	case "on", "true", "yes":
		return true, true
	case "off", "false", "no":
		return false, true
	}
	return false, false
}

// validName accepts model and provider names: letters, digits and . _ - :.
func validName(s string) bool {
	if len(s) > 100 {
		return false
	}
	for _, r := range s {
		if !(r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("._-:", r))) {
			return false
		}
	}
	return true
}

// tokenize splits flags on spaces, keeping "double-quoted" (or “curly”)
// values together.
func tokenize(s string) ([]string, error) {
	var toks []string
	var cur strings.Builder
	inQuote, quoted := rune(0), false
	flush := func() {
		if cur.Len() > 0 || quoted {
			toks = append(toks, cur.String())
		}
		cur.Reset()
		quoted = false
	}
	for _, r := range s {
		switch {
		case inQuote != 0 && r == inQuote:
			inQuote = 0
		case inQuote != 0:
			cur.WriteRune(r)
		case r == '"':
			inQuote, quoted = '"', true
		case r == '“':
			inQuote, quoted = '”', true
		case unicode.IsSpace(r):
			flush()
		default:
			cur.WriteRune(r)
		}
	}
	if inQuote != 0 {
		return nil, Errorf(Invalid, "a quote in the flags is not closed")
	}
	flush()
	return toks, nil
}

// parsePair splits "W<sep>H" into two positive whole numbers. A number too
// large for an int counts as math.MaxInt, so that the caller's range check,
// not this one, refuses it, with a message naming the real range.
func parsePair(s, sep string) (int, int, bool) {
	a, b, ok := strings.Cut(s, sep)
	if !ok {
		return 0, 0, false
	}
	w, okW := positive(a)
	h, okH := positive(b)
	return w, h, okW && okH
}

// positive parses a whole number above 0; one too large for an int is
// math.MaxInt.
func positive(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	if errors.Is(err, strconv.ErrRange) && !strings.HasPrefix(s, "-") {
		return math.MaxInt, true
	}
	return n, err == nil && n > 0
}

// ParseSize returns the width and height of a "WxH" size.
func ParseSize(s string) (w, h int, ok bool) { return parsePair(s, "x") }

// CheckSize returns an Invalid *Error if size is not an acceptable "WxH".
func CheckSize(size string) error {
	w, h, ok := ParseSize(size)
	if !ok {
		return Errorf(Invalid, "--size %s is not a size: use WIDTHxHEIGHT such as 1536x1024", size)
	}
	switch {
	case w < minEdge || h < minEdge || w > maxEdge || h > maxEdge:
		return Errorf(Invalid, "--size %s: each edge must be between %d and %d pixels", size, minEdge, maxEdge)
	case w%16 != 0 || h%16 != 0:
		return Errorf(Invalid, "--size %s: width and height must both be divisible by 16", size)
	case w*h > maxPixels:
		return Errorf(Invalid, "--size %s is too large: at most 3840x2160 pixels in total", size)
	case float64(w)/float64(h) > maxAspect || float64(h)/float64(w) > maxAspect:
		return Errorf(Invalid, "--size %s: the aspect ratio must be between 1:3 and 3:1", size)
	}
	return nil
}

// SizeForAspect returns a "WxH" of about one megapixel with the aspect w:h,
// edges rounded to multiples of 16.
func SizeForAspect(w, h int) string {
	const area = 1024 * 1024
	r := float64(w) / float64(h)
	width := round16(math.Sqrt(area * r))
	height := round16(float64(width) / r)
	return fmt.Sprintf("%dx%d", width, height)
}

// HighQualitySize returns the size a high-quality re-render of a w×h image
// asks for: the long edge doubled up to 2048 pixels, within the size limits.
func HighQualitySize(w, h int) string {
	if w <= 0 || h <= 0 {
		return ""
	}
	long := max(w, h)
	scale := min(2.0, 2048/float64(long))
	scale = max(scale, 1)
	nw, nh := round16(float64(w)*scale), round16(float64(h)*scale)
	for nw*nh > maxPixels || nw > maxEdge || nh > maxEdge {
		nw, nh = round16(float64(nw)*0.9), round16(float64(nh)*0.9)
	}
	return fmt.Sprintf("%dx%d", nw, nh)
}

func round16(x float64) int {
	return max(16, int(math.Round(x/16))*16)
}
