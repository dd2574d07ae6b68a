package console

import (
	"context"
	"fmt"
	"strings"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/imagecheck"
)

// style runs /style: list (also with no argument), set NAME …, delete NAME.
func (c *Console) style(ctx context.Context, arg string, msg core.Message) error {
	verb, rest, _ := strings.Cut(arg, " ")
	rest = strings.TrimSpace(rest)
	switch verb {
	case "", "list":
		return c.listStyles(ctx, msg)
	case "set":
		name, spec, _ := strings.Cut(rest, " ")
		if name == "" {
			return fmt.Errorf("/style set: name the style, then its words and flags, e.g. /style set brand flat vector art --quality high")
		}
		spec, paths := referencePaths(spec)
		var refs []core.Image
		for _, p := range paths {
			img, err := imagecheck.ReadFile(p, c.opts.Attachments)
			if err != nil {
				return fmt.Errorf("/style set: %s", core.UserMessage(err, ""))
			}
			refs = append(refs, img)
		}
		s, replaced, err := c.engine.SetStyle(ctx, msg, name, spec, refs)
		if err != nil {
			return c.userError("/style set", err)
		}
		what := "added"
		if replaced {
			what = "replaced"
		}
		c.out.printf("🎨 style %s %s: %s%s\n", s.Name, what, s.Spec(), refNote(len(s.Refs)))
	case "delete":
		if rest == "" || strings.Contains(rest, " ") {
			return fmt.Errorf("/style delete: name one style, e.g. /style delete brand")
		}
		if err := c.engine.DeleteStyle(ctx, msg, rest); err != nil {
			return c.userError("/style delete", err)
		}
		c.out.printf("🎨 style %s deleted\n", strings.ToLower(rest))
	default:
		return fmt.Errorf("/style: unknown %q; use /style list, /style set NAME … or /style delete NAME", verb)
	}
	return nil
}

// referencePaths takes the --ref PATH pairs out of a style's definition.
func referencePaths(spec string) (rest string, paths []string) {
	fields := strings.Fields(spec)
	var kept []string
	for i := 0; i < len(fields); i++ {
		if fields[i] == "--ref" && i+1 < len(fields) {
			paths = append(paths, fields[i+1])
			i++
			continue
		}
		kept = append(kept, fields[i])
	}
	return strings.Join(kept, " "), paths
}

// refNote says how many reference images a style has.
func refNote(n int) string {
	switch n {
	case 0:
		return ""
	case 1:
		return " (1 reference image)"
	}
	return fmt.Sprintf(" (%d reference images)", n)
}

// listStyles prints the styles and the console's defaults.
func (c *Console) listStyles(ctx context.Context, msg core.Message) error {
	styles, err := c.engine.Styles(ctx, msg)
	if err != nil {
		return c.userError("/style", err)
	}
	var b strings.Builder
	if len(styles) == 0 {
		b.WriteString("no styles yet: /style set NAME words --flags adds one\n")
	}
	for _, s := range styles {
		from := "set by " + s.By.Name
		if s.Config {
			from = "from the config"
		}
		fmt.Fprintf(&b, "🎨 %s: %s%s (%s)\n", s.Name, s.Spec(), refNote(len(s.Refs)), from)
	}
	d, _, err := c.engine.ChannelDefaults(ctx, msg)
	if err != nil {
		return c.userError("/style", err)
	}
	if !d.IsZero() {
		fmt.Fprintf(&b, "defaults here: %s\n", d)
	}
	c.out.printf("%s", b.String())
	return nil
}

// defaults runs /defaults: show (no argument), clear, or set from flags.
func (c *Console) defaults(ctx context.Context, arg string, msg core.Message) error {
	switch arg {
	case "":
		d, _, err := c.engine.ChannelDefaults(ctx, msg)
		if err != nil {
			return c.userError("/defaults", err)
		}
		if d.IsZero() {
			c.out.printf("no defaults here: a new session takes only its own flags\n")
		} else {
			c.out.printf("defaults here: %s\n", d)
		}
		return nil
	case "clear":
		arg = ""
	}
	d, err := c.engine.SetChannelDefaults(ctx, msg, Channel, arg)
	if err != nil {
		return c.userError("/defaults", err)
	}
	if d.IsZero() {
		c.out.printf("defaults cleared\n")
	} else {
		c.out.printf("defaults here: %s\n", d)
	}
	return nil
}

// userError returns err as the engine's message for the user, prefixed
// with the command; an internal error is logged under the reference the
// message names.
func (c *Console) userError(command string, err error) error {
	ref := core.NewRef()
	if core.KindOf(err) == core.Internal {
		c.opts.Log.Error("console "+command+" failed", "ref", ref, "err", err)
	}
	return fmt.Errorf("%s: %s", command, core.UserMessage(err, ref))
}
