package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/safetext"
	"github.com/easel-bot/easel/storage/imageref"
)

const sessionsUsage = `Usage: easel sessions <list|show|export> [flags]

  list                 every stored session, newest first
  show ID              the version tree of a session: prompts, flags, provider,
                       model, cost, timings and image paths
  export ID -o DIR     the session's images plus session.json and index.html,
                       into a new or empty DIR (-force: replace files there);
                       a composited region edit's original as vN-original

Each takes -config FILE and -data DIR to choose the data dir.`

func cmdSessions(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		fmt.Fprintln(e.stderr, sessionsUsage)
		if len(args) == 0 {
			return usageError{"missing subcommand: list, show or export"}
		}
		return nil
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet(e, "sessions "+sub, "sessions "+sub+" [flags]"+map[string]string{"list": "", "show": " ID", "export": " ID -o DIR"}[sub])
	configPath := fs.String("config", "", "TOML config `file` (default: the embedded defaults)")
	data := fs.String("data", "", "data `dir` (default: storage.dir, ./easel-data)")
	out := new(string)
	asJSON, force := new(bool), new(bool)
	switch sub {
	case "list":
	case "show":
		asJSON = fs.Bool("json", false, "print the session record as JSON")
	case "export":
		out = fs.String("o", "", "output `dir`: created if missing, else it must be empty")
		force = fs.Bool("force", false, "export into a non-empty output dir, replacing files of the same names (never writing through a symbolic link)")
	default:
		return usageError{fmt.Sprintf("unknown subcommand %q: use list, show or export", sub)}
	}
	// Accept the session id before or after the flags.
	var id string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		id, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if id == "" && fs.NArg() > 0 {
		id = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	if sub != "list" && id == "" {
		return usageError{"missing session ID (see: easel sessions list)"}
	}
	if sub == "export" && *out == "" {
		return usageError{"missing -o DIR"}
	}

	cfg, log, db, err := openReport(ctx, e, *configPath, *data)
	if err != nil {
		return err
	}
	defer db.Close()
	images, err := readImages(ctx, cfg, log)
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		return listSessions(ctx, e.stdout, db)
	case "show":
		return showSession(ctx, e.stdout, db, images, id, *asJSON)
	default:
		return exportSession(ctx, e.stdout, e.stderr, db, images, id, *out, *force)
	}
}

func listSessions(ctx context.Context, w io.Writer, db sessionStore) error {
	sessions, err := db.Sessions(ctx)
	if err != nil {
		return err
	}
	if len(sessions) == 0 {
		fmt.Fprintln(w, "no sessions yet: try `easel chat`")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPLATFORM\tUPDATED\tVERSIONS\tTURNS\tCOST\tFIRST PROMPT")
	for _, s := range sessions {
		first := ""
		if len(s.Turns) > 0 {
			first = safetext.Line(core.Truncate(s.Turns[0].Prompt, 50))
		}
		var cost float64
		for _, t := range s.Turns {
			cost += t.CostUSD
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", s.ID, s.Platform, s.UpdatedAt.Local().Format("2006-01-02 15:04"),
			len(s.Versions), len(s.Turns), core.FormatCost(cost), first)
	}
	return tw.Flush()
}

func showSession(ctx context.Context, w io.Writer, db sessionStore, images core.ImageStore, id string, asJSON bool) error {
	s, err := db.Session(ctx, id)
	if err != nil {
		return err
	}
	if asJSON {
		// encoding/json writes DEL, the C1 controls and bidi characters raw;
		// escaped, the record decodes to the same data.
		record, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return fmt.Errorf("show: %w", err)
		}
		_, err = w.Write(append(safetext.JSON(record), '\n'))
		return err
	}
	fmt.Fprintf(w, "%s\n\nversions:\n", safetext.Line(fmt.Sprintf("session %s · %s · started %s by %s · head v%d",
		s.ID, s.Platform, s.CreatedAt.Local().Format("2006-01-02 15:04:05"), s.CreatedBy.Name, s.Head)))
	if len(s.Versions) == 0 {
		fmt.Fprintln(w, "(none yet)")
	}
	imageLine := func(ref core.ImageRef) string { // the path, flagged if the file is not whole
		if problem, _ := imageProblem(images, ref, checkImage(ctx, images, ref)); problem != "" {
			return images.Locate(ref) + "  ⚠ " + problem
		}
		return images.Locate(ref)
	}
	if err := core.WriteTree(w, s, imageLine); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nturns:")
	if err := core.WriteTurns(w, s); err != nil {
		return err
	}
	for _, t := range s.Turns {
		if f := t.Flags; f != (core.Flags{}) {
			b, _ := json.Marshal(f)
			fmt.Fprintf(w, "  #%d flags %s\n", t.ID, safetext.JSON(b))
		}
		if a := t.Applied; a != nil {
			fmt.Fprintf(w, "  #%d %s\n", t.ID, safetext.Line(appliedLine(a)))
		}
	}
	return nil
}

// exportSession writes a session's images into dir as v1.png, v2.png, …
// with session.json and index.html beside them. A version that a strict
// region edit composited also gets the provider's own image, as
// v3-original.png say, with its provenance intact. dir is created if missing;
// an existing one must be empty unless force (see openExportDir), and no
// file is written through a symbolic link (see exportDir.write).
//
// An image that is missing or damaged in the data dir is skipped, with a
// line on errw naming its version and file; everything else is still
// written, index.html marks the skipped versions, and the error returned
// lists them.
func exportSession(ctx context.Context, w, errw io.Writer, db sessionStore, images core.ImageStore, id, dir string, force bool) error {
	s, err := db.Session(ctx, id)
	if err != nil {
		return err
	}
	out, err := openExportDir(dir, force)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer out.Close()
	files := make([]string, len(s.Versions))     // "" where the image was skipped
	problems := make([]string, len(s.Versions))  // why it was skipped
	originals := make([]string, len(s.Versions)) // the provider's image of a composited version
	var skipped []string
	missing := 0 // versions whose image was skipped
	deleted := 0 // versions deleted, whose images are not exported
	for i, v := range s.Versions {
		if err := ctx.Err(); err != nil {
			return err
		}
		if v.Deleted != nil {
			fmt.Fprintf(errw, "easel sessions: v%d not exported: it was deleted\n", v.N)
			problems[i] = "deleted"
			deleted++
			continue
		}
		name := fmt.Sprintf("v%d%s", v.N, core.ExtForMIME(v.Image.MIME))
		img, err := images.Get(ctx, v.Image)
		if err != nil {
			problem, detail := imageProblem(images, v.Image, err)
			fmt.Fprintf(errw, "easel sessions: %s not exported: %s: %s\n", name, problem, detail)
			problems[i] = problem
			skipped = append(skipped, name)
			missing++
			continue
		}
		files[i] = name
		if err := out.write(name, writeBytes(img.Data)); err != nil {
			return fmt.Errorf("export v%d: %w", v.N, err)
		}
		if v.Original == nil {
			continue
		}
		// A strict region edit: the image shown is composited; the
		// provider's own image, with its provenance, is exported beside it.
		orig := fmt.Sprintf("v%d-original%s", v.N, core.ExtForMIME(v.Original.MIME))
		img, err = images.Get(ctx, *v.Original)
		if err != nil {
			problem, detail := imageProblem(images, *v.Original, err)
			fmt.Fprintf(errw, "easel sessions: %s not exported: %s: %s\n", orig, problem, detail)
			skipped = append(skipped, orig)
			continue
		}
		originals[i] = orig
		if err := out.write(orig, writeBytes(img.Data)); err != nil {
			return fmt.Errorf("export v%d's original: %w", v.N, err)
		}
	}
	record, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := out.write("session.json", writeBytes(append(record, '\n'))); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	err = out.write("index.html", func(f io.Writer) error { return exportPage.Execute(f, exportData(s, files, originals, problems)) })
	if err != nil {
		return fmt.Errorf("export: write index.html: %w", err)
	}
	if len(skipped) > 0 {
		fmt.Fprintf(w, "exported %d of %d images of session %s to %s%s\n", len(files)-missing-deleted, len(files)-deleted, s.ID, dir, originalsNote(originals))
		return fmt.Errorf("export of session %s is incomplete: %s not exported (the stored images are missing or damaged); the other images, session.json and index.html are in %s",
			s.ID, strings.Join(skipped, ", "), dir)
	}
	fmt.Fprintf(w, "exported %d images of session %s to %s%s\n", len(files)-deleted, s.ID, dir, originalsNote(originals))
	return nil
}

// originalsNote says how many providers' originals of composited versions
// were exported beside their images, if any.
func originalsNote(originals []string) string {
	n := 0
	for _, o := range originals {
		if o != "" {
			n++
		}
	}
	switch n {
	case 0:
		return ""
	case 1:
		return " (and 1 provider's original of a composited region edit)"
	default:
		return fmt.Sprintf(" (and %d providers' originals of composited region edits)", n)
	}
}

// checkImage returns the error reading ref's bytes from images would
// return, or nil, without keeping the bytes where the store can.
func checkImage(ctx context.Context, images core.ImageStore, ref core.ImageRef) error {
	if c, ok := images.(interface {
		Check(context.Context, core.ImageRef) error
	}); ok {
		return c.Check(ctx, ref)
	}
	_, err := images.Get(ctx, ref)
	return err
}

// imageProblem says what is wrong with the stored image of ref, given the
// error reading it: problem is "" (err is nil), "image missing", "image
// damaged" or "image unreadable"; detail names the file and says more.
func imageProblem(images core.ImageStore, ref core.ImageRef, err error) (problem, detail string) {
	var damaged *imageref.DamagedError
	switch {
	case err == nil:
		return "", ""
	case core.KindOf(err) == core.NotFound:
		return "image missing", "nothing at " + images.Locate(ref)
	case errors.As(err, &damaged):
		return "image damaged", fmt.Sprintf("%s: %v", damaged.Where, damaged.Err)
	default:
		return "image unreadable", err.Error()
	}
}

// writeBytes returns a fill function for exportDir.write that writes data.
func writeBytes(data []byte) func(io.Writer) error {
	return func(f io.Writer) error {
		_, err := f.Write(data)
		return err
	}
}

type exportVersion struct {
	File, Caption string
	Original      string // the provider's image, when File is composited
	Problem       string // why File is "": the image was not exported
	N, Parent     int
	Head          bool
}

func exportData(s *core.Session, files, originals, problems []string) any {
	vs := make([]exportVersion, len(s.Versions))
	for i, v := range s.Versions {
		vs[i] = exportVersion{File: files[i], Original: originals[i], Problem: problems[i], Caption: core.Caption(s, v.N), N: v.N, Parent: v.Parent, Head: v.N == s.Head}
	}
	return struct {
		Session  *core.Session
		Versions []exportVersion
	}{s, vs}
}

var exportPage = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Easel session {{.Session.ID}}</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;background:#fafafa}figure{display:inline-block;margin:1rem;vertical-align:top;max-width:340px}
img{max-width:320px;border:1px solid #ccc;background:#fff}.head img{border:3px solid #2a7}figcaption{font-size:.85rem;color:#333}
.missing{width:320px;padding:3rem 0;text-align:center;border:1px dashed #c33;color:#c33}</style></head>
<body><h1>Easel session {{.Session.ID}}</h1>
<p>{{.Session.Platform}} · started {{.Session.CreatedAt.Format "2006-01-02 15:04"}} · head v{{.Session.Head}}</p>
{{range .Versions}}<figure{{if .Head}} class="head"{{end}} id="v{{.N}}">{{if .File}}<a href="{{.File}}"><img src="{{.File}}" alt="v{{.N}}"></a>{{else}}<p class="missing">v{{.N}}: {{.Problem}}</p>{{end}}
<figcaption>{{.Caption}}{{if .Parent}} · from <a href="#v{{.Parent}}">v{{.Parent}}</a>{{end}}{{if .Original}} · <a href="{{.Original}}">the provider's original</a>{{end}}</figcaption></figure>
{{end}}</body></html>
`))

// appliedLine says what a turn took from a style and its channel's
// defaults.
func appliedLine(a *core.Applied) string {
	var parts []string
	if a.Style != "" {
		from := "--style"
		if a.FromChannel {
			from = "the channel's default"
		}
		parts = append(parts, fmt.Sprintf("style %s (%s), adding %q", a.Style, from, a.StylePrompt))
	}
	if a.Defaults != "" {
		parts = append(parts, "channel defaults applied: "+a.Defaults)
	}
	return strings.Join(parts, "; ")
}
