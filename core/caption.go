package core

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/easel-bot/easel/core/safetext"
)

// Caption returns the line posted under version n: its number and lineage,
// the prompt, the style it used, model, size, time taken and estimated cost. The prompt is on
// one line, and the control and bidirectional characters a user typed are
// removed (safetext.Chat), so a right-to-left override in a prompt cannot
// disguise the caption.
func Caption(s *Session, n int) string { return safetext.Chat(caption(s, n)) }

// caption is Caption with the text as the user typed it.
func caption(s *Session, n int) string {
	v := s.Version(n)
	if v == nil {
		return ""
	}
	t := s.Turn(v.Turn)
	parts := []string{fmt.Sprintf("v%d", n)}
	switch {
	case t.Kind == KindGenerate:
	case v.Parent != 0:
		parts[0] += fmt.Sprintf(" (%s of v%d)", kindLabel(t.Kind), v.Parent)
	default:
		parts[0] += " (" + kindLabel(t.Kind) + ")"
	}
	if t.Prompt != "" {
		parts = append(parts, "“"+Truncate(t.Prompt, 120)+"”")
	}
	if a := t.Applied; a != nil && a.Style != "" && t.Kind != KindHighQuality {
		parts = append(parts, "style "+a.Style)
	}
	if t.Flags.Region != "" && t.Kind != KindHighQuality {
		parts = append(parts, "region "+t.Flags.Region)
	}
	if v.Original != nil {
		parts = append(parts, "composited onto v"+fmt.Sprint(v.Parent)+": nothing outside the region changed (the provider's original is kept)")
	}
	if v.RevisedPrompt != "" && v.RevisedPrompt != t.Prompt {
		parts = append(parts, "drawn as “"+Truncate(v.RevisedPrompt, 80)+"”")
	}
	if t.Model == "" || t.Model == t.Provider {
		parts = append(parts, t.Provider)
	} else {
		parts = append(parts, t.Model)
	}
	if v.Image.Width > 0 {
		parts = append(parts, fmt.Sprintf("%dx%d", v.Image.Width, v.Image.Height))
	}
	if !t.StartedAt.IsZero() && !t.FinishedAt.IsZero() {
		parts = append(parts, t.FinishedAt.Sub(t.StartedAt).Round(100*time.Millisecond).String())
	}
	parts = append(parts, FormatCost(t.CostUSD))
	return strings.Join(parts, " · ")
}

func kindLabel(k TurnKind) string {
	switch k {
	case KindHighQuality:
		return "high quality"
	case KindRegenerate:
		return "regeneration"
	default:
		return string(k)
	}
}

// FormatCost renders an estimated cost in US dollars.
func FormatCost(usd float64) string {
	return fmt.Sprintf("$%.3f", usd)
}

// Truncate shortens s to at most n characters, ending with "…" if cut, and
// puts it on one line.
func Truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// WriteTree writes the version tree of s to a terminal, one version per
// line, with the turn that made it; path, if not nil, gives each image's
// file path (and, for a strict region edit, that of the provider's
// original). Under a version come the prompt its image model was given, if
// the provider rewrote it, and the questions answered in words about it,
// each on a line starting with 💬 (those asked before the first image come
// first). Each line goes through safetext.Line: what a user typed, or a
// model wrote, shows with its control and bidirectional characters escaped,
// and never starts a line of its own.
func WriteTree(w io.Writer, s *Session, path func(ImageRef) string) error {
	var err error
	answers := func(n int, indent string) {
		for _, t := range s.Turns {
			if t.Kind == KindAnswer && t.Base == n {
				if _, e := fmt.Fprintln(w, safetext.Line(indent+answerLine(&t))); e != nil && err == nil {
					err = e
				}
			}
		}
	}
	answers(0, "")
	var walk func(parent int, indent string)
	walk = func(parent int, indent string) {
		kids := s.Children(parent)
		for i, n := range kids {
			branch, next := "├─ ", "│  "
			if i == len(kids)-1 {
				branch, next = "└─ ", "   "
			}
			if parent == 0 {
				branch, next = "", ""
			}
			head := ""
			if n == s.Head {
				head = "  ← head"
			}
			if d := s.Version(n).Deleted; d != nil {
				head += "  🗑️ deleted by " + displayName(d.By)
			}
			if _, e := fmt.Fprintln(w, safetext.Line(indent+branch+caption(s, n)+head)); e != nil && err == nil {
				err = e
			}
			if path != nil && s.Version(n).Deleted == nil {
				fmt.Fprintln(w, safetext.Line(indent+next+"   "+path(s.Version(n).Image)))
				if o := s.Version(n).Original; o != nil {
					fmt.Fprintln(w, safetext.Line(indent+next+"   the provider's original: "+path(*o)))
				}
			}
			if rp := s.Version(n).RevisedPrompt; Truncate(rp, 300) != Truncate(rp, 80) { // cut short in the caption
				fmt.Fprintln(w, safetext.Line(indent+next+"   drawn as “"+Truncate(rp, 300)+"”"))
			}
			answers(n, indent+next+"   ")
			walk(n, indent+next)
		}
	}
	walk(0, "")
	return err
}

// answerLine describes a KindAnswer turn on one line: the question, the
// answer, the model and the cost.
func answerLine(t *Turn) string {
	line := fmt.Sprintf("💬 #%d “%s” → “%s”", t.ID, Truncate(t.Prompt, 80), Truncate(t.Answer, 200))
	if t.Model != "" {
		line += " · " + t.Model
	}
	return line + " · " + FormatCost(t.CostUSD)
}

// WriteTurns writes every turn of s to a terminal: who asked what, how it
// went, what was answered in words, and the turns that made no image (undo,
// answers, failures, queued work). Like WriteTree, it escapes each line
// with safetext.Line.
func WriteTurns(w io.Writer, s *Session) error {
	for _, t := range s.Turns {
		line := fmt.Sprintf("#%d %s %s", t.ID, t.QueuedAt.Format("2006-01-02 15:04:05"), either(string(t.Kind), string(t.Action)))
		if t.Text != "" {
			line += " “" + Truncate(t.Text, 100) + "”"
		}
		if t.User.Name != "" || t.User.ID != "" {
			line += " by " + displayName(t.User)
		}
		line += " · " + string(t.Status)
		if t.Status == StatusCanceled && t.Cancel != nil {
			line += " by " + displayName(t.Cancel.By)
		}
		if len(t.Outputs) > 0 {
			outs := make([]string, len(t.Outputs))
			for i, n := range t.Outputs {
				outs[i] = fmt.Sprintf("v%d", n)
			}
			line += " → " + strings.Join(outs, ", ")
		}
		if t.Kind == KindPick {
			line += fmt.Sprintf(" → v%d picked", t.Base)
		}
		if t.Kind == KindDescribe {
			line += fmt.Sprintf(" · 💡 %d prompts suggested", len(t.Suggestions))
		}
		if t.Answer != "" {
			line += " · 💬 “" + Truncate(t.Answer, 100) + "”"
		}
		if t.Attempts > 1 {
			line += fmt.Sprintf(" · %d attempts", t.Attempts)
		}
		u := t.Usage
		var tokens []string
		if u.InputTextTokens != 0 || u.InputImageTokens != 0 || u.OutputTokens != 0 {
			tokens = append(tokens, fmt.Sprintf("tokens in %d text + %d image, out %d", u.InputTextTokens, u.InputImageTokens, u.OutputTokens))
		}
		if u.ConversationInputTokens != 0 || u.ConversationOutputTokens != 0 {
			tokens = append(tokens, fmt.Sprintf("conversation model in %d, out %d", u.ConversationInputTokens, u.ConversationOutputTokens))
		}
		if len(tokens) > 0 {
			line += " · " + strings.Join(tokens, "; ")
		}
		if t.Kind == KindAnswer || t.Kind == KindDescribe {
			line += " · " + FormatCost(t.CostUSD)
		}
		if t.Error != "" {
			line += " · " + t.Error
		}
		if _, err := fmt.Fprintln(w, safetext.Line(line)); err != nil {
			return err
		}
	}
	return nil
}
