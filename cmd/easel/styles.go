package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/easel-bot/easel/config"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/imagecheck"
	"github.com/easel-bot/easel/core/safetext"
)

// configStyles returns the styles of cfg's [styles] tables, their
// reference images read, checked like attachments and stored in images.
func configStyles(ctx context.Context, cfg config.Config, images core.ImageStore) ([]core.Style, error) {
	var out []core.Style
	for _, name := range slices.Sorted(maps.Keys(cfg.Styles)) {
		st := cfg.Styles[name]
		s, err := core.ParseStyle(name, st.Spec(), core.Limits{MaxN: cfg.Engine.MaxN})
		if err != nil {
			return nil, fmt.Errorf("styles.%s: %w", name, err)
		}
		for i, path := range st.References {
			img, err := imagecheck.ReadFile(path, cfg.Attach.Limits())
			if err != nil {
				return nil, fmt.Errorf("styles.%s.references entry %d: %w", name, i+1, err)
			}
			ref, err := images.Put(ctx, img)
			if err != nil {
				return nil, fmt.Errorf("styles.%s.references entry %d: store %s: %w", name, i+1, path, err)
			}
			s.Refs = append(s.Refs, ref)
		}
		out = append(out, s)
	}
	return out, nil
}

// styleLister is what `easel styles` reads from the session store.
type styleLister interface {
	EveryStyle(ctx context.Context, fn func(platform, workspace string, s core.Style) error) error
	EveryChannelDefaults(ctx context.Context, fn func(platform, workspace, channel string, d core.ChannelDefaults) error) error
}

// listedStyle is one style in the output of `easel styles`.
type listedStyle struct {
	Platform  string `json:"platform,omitempty"`  // "" for the config's
	Workspace string `json:"workspace,omitempty"` // "" for the config's
	core.Style
	FromConfig bool `json:"from_config,omitempty"`
}

// listedDefaults is one channel's defaults in the output of `easel styles`.
type listedDefaults struct {
	Platform  string `json:"platform"`
	Workspace string `json:"workspace"`
	Channel   string `json:"channel"`
	core.ChannelDefaults
}

// cmdStyles lists the styles of the config and those admins set in chat,
// with every channel's defaults. It opens the data dir read-only, so it
// works while `easel run` holds it.
func cmdStyles(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "styles", "styles [flags]")
	configPath := fs.String("config", "", "TOML config `file`, for the data dir and the [styles] tables (default: the embedded defaults)")
	data := fs.String("data", "", "data `dir` (default: storage.dir, ./easel-data)")
	asJSON := fs.Bool("json", false, "print the styles and defaults as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	cfg, _, db, err := openReport(ctx, e, *configPath, *data)
	if err != nil {
		return err
	}
	defer db.Close()

	var styles []listedStyle
	for _, name := range slices.Sorted(maps.Keys(cfg.Styles)) {
		st := cfg.Styles[name]
		s, err := core.ParseStyle(name, st.Spec(), core.Limits{MaxN: cfg.Engine.MaxN})
		if err != nil {
			return fmt.Errorf("styles.%s: %w", name, err)
		}
		for _, path := range st.References {
			s.Refs = append(s.Refs, core.ImageRef{Name: path})
		}
		styles = append(styles, listedStyle{Style: s, FromConfig: true})
	}
	err = db.EveryStyle(ctx, func(platform, workspace string, s core.Style) error {
		styles = append(styles, listedStyle{Platform: platform, Workspace: workspace, Style: s})
		return nil
	})
	if err != nil {
		return err
	}
	var defaults []listedDefaults
	err = db.EveryChannelDefaults(ctx, func(platform, workspace, channel string, d core.ChannelDefaults) error {
		defaults = append(defaults, listedDefaults{Platform: platform, Workspace: workspace, Channel: channel, ChannelDefaults: d})
		return nil
	})
	if err != nil {
		return err
	}
	if *asJSON {
		out, err := json.MarshalIndent(struct {
			Styles          []listedStyle    `json:"styles"`
			ChannelDefaults []listedDefaults `json:"channel_defaults"`
		}{styles, defaults}, "", "  ")
		if err != nil {
			return err
		}
		_, err = e.stdout.Write(append(safetext.JSON(out), '\n'))
		return err
	}
	return writeStyles(e.stdout, styles, defaults)
}

// writeStyles prints styles and defaults as tables. Everything set in chat
// is escaped for the terminal.
func writeStyles(w io.Writer, styles []listedStyle, defaults []listedDefaults) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STYLE\tWHERE\tDEFINITION\tREFERENCES\tSET BY")
	if len(styles) == 0 {
		fmt.Fprintln(tw, "(none)\t\t\t\t")
	}
	for _, s := range styles {
		where, by := "config", "config"
		if !s.FromConfig {
			where = s.Platform + "/" + orNone(s.Workspace)
			by = s.By.Name + " (" + s.By.ID + ") " + s.At.UTC().Format("2006-01-02 15:04")
		}
		row(tw, s.Name, where, core.Truncate(s.Spec(), 80), strconv.Itoa(len(s.Refs)), by)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "CHANNEL\tDEFAULTS\tSET BY")
	if len(defaults) == 0 {
		fmt.Fprintln(tw, "(none)\t\t")
	}
	for _, d := range defaults {
		row(tw, d.Platform+"/"+orNone(d.Workspace)+"/"+d.Channel, d.ChannelDefaults.String(),
			d.By.Name+" ("+d.By.ID+") "+d.At.UTC().Format("2006-01-02 15:04"))
	}
	return tw.Flush()
}

// row writes one table row of fields, each escaped for the terminal.
func row(w io.Writer, fields ...string) {
	for i, f := range fields {
		fields[i] = safetext.Line(f)
	}
	fmt.Fprintln(w, strings.Join(fields, "\t"))
}

// orNone spells an empty workspace id.
func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
