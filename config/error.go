package config

import (
	"cmp"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem with a configuration value. It never contains a
// secret.
type Error struct {
	// File is the configuration file, or "" when the value did not come from
	// one.
	File string
	// Line is the line of Key in File, counted from 1, or 0 when unknown
	// (such as for a value left at its default).
	Line int
	// Key is the TOML key, such as slack.mode or
	// openai.prices."gpt-image-2".output, or the environment variable the
	// value came from, such as OPENAI_BASE_URL. It is "" when the problem
	// concerns no key in particular.
	Key string
	// Msg says what is wrong, such as `must be "socket" or "http", got "sockets"`.
	Msg string
}

// Error returns the problem as "file:line: key: msg", leaving out what is
// unknown.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// join returns problems joined with errors.Join, or nil if there are none.
func join(problems []*Error) error {
	errs := make([]error, len(problems))
	for i, p := range problems {
		errs[i] = p
	}
	return errors.Join(errs...)
}

// inLineOrder returns problems joined, in the order of their lines; those
// without a line come last.
func inLineOrder(problems []*Error) error {
	order := func(p *Error) int {
		if p.Line == 0 {
			return math.MaxInt
		}
		return p.Line
	}
	slices.SortStableFunc(problems, func(a, b *Error) int { return cmp.Compare(order(a), order(b)) })
	return join(problems)
}

// formatKey writes a key path as TOML does, quoting the parts that are not
// bare keys: openai.prices."gpt-image-1.5".output.
func formatKey(path ...string) string {
	parts := make([]string, len(path))
	for i, p := range path {
		parts[i] = p
		if !isBareKey(p) {
			parts[i] = strconv.Quote(p)
		}
	}
	return strings.Join(parts, ".")
}

// isBareKey reports whether TOML allows s as a key without quotes.
func isBareKey(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
