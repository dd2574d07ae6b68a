package gallery

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/easel-bot/easel/core"
)

// sessionView is a session's page.
type sessionView struct {
	ID, Where, By string
	Created       time.Time
	Updated       time.Time
	Head          int
	Cost          string
	All           bool             // the viewer may see the whole gallery
	Early         []answerView     // questions answered before the first image
	Tree          [][]*versionView // chains from each root
	Turns         []turnView
}

// versionView is one version in the tree. A chain is a version followed
// by its only child, and so on; where a version has several children, each
// starts a branch of its own.
type versionView struct {
	N, Parent int
	Head      bool
	Image     imageView
	Original  *imageView // the provider's own image of a composited region edit
	Label     string     // how it was made, such as "refine of v2"
	Prompt    string
	Revised   string // the prompt as the provider redrew it, if different
	Answer    string // a note the provider wrote beside the image
	Flags     []string
	Provider  string
	Model     string
	Cost      string
	Took      string // from the turn's start to its end
	By        string
	Asked     time.Time
	Answers   []answerView     // questions answered in words about it
	Branches  [][]*versionView // chains from its children, when there are several
}

// imageView is an image on a page: its URL and what it shows.
type imageView struct {
	URL           string
	Alt           string
	Width, Height int
}

// answerView is a question answered in words.
type answerView struct {
	Turn           int
	Question, Text string
	By             string
	Model, Cost    string
}

// turnView is one row of the turns table.
type turnView struct {
	ID       int
	Queued   time.Time
	Kind     string
	By       string
	Text     string
	Status   string
	Outputs  string
	Provider string
	Cost     string
	Tokens   string
	Error    string
}

// sessionPage serves a session's version tree and turns.
func (g *Gallery) sessionPage(w http.ResponseWriter, r *http.Request, sc scope) {
	id := r.PathValue("id")
	if !validID(id) {
		g.fail(w, r, http.StatusNotFound)
		return
	}
	x, err := g.store.Session(r.Context(), id)
	if err != nil {
		g.storeFailed(w, r, err)
		return
	}
	g.render(w, r, http.StatusOK, "session.html", viewSession(x, sc.all))
}

// viewSession describes x for its page.
func viewSession(x *core.Session, all bool) sessionView {
	v := sessionView{
		ID: x.ID, Where: where(x), By: person(x.CreatedBy),
		Created: x.CreatedAt, Updated: x.UpdatedAt, Head: x.Head, Cost: core.FormatCost(cost(x)), All: all,
	}
	answers := map[int][]answerView{} // by the version asked about
	for _, t := range x.Turns {
		if t.Kind == core.KindAnswer {
			answers[t.Base] = append(answers[t.Base], answerView{
				Turn: t.ID, Question: t.Prompt, Text: t.Answer, By: person(t.User), Model: t.Model, Cost: core.FormatCost(t.CostUSD),
			})
		}
		v.Turns = append(v.Turns, viewTurn(&t))
	}
	v.Early = answers[0]

	children := map[int][]int{}
	for _, ver := range x.Versions {
		children[ver.Parent] = append(children[ver.Parent], ver.N)
	}
	seen := make([]bool, len(x.Versions)+1)
	var chain func(n int) []*versionView
	chain = func(n int) []*versionView {
		var c []*versionView
		for !seen[n] {
			seen[n] = true
			node := viewVersion(x, x.Version(n), answers[n])
			c = append(c, node)
			kids := children[n]
			if len(kids) == 1 {
				n = kids[0]
				continue
			}
			for _, k := range kids {
				if !seen[k] {
					node.Branches = append(node.Branches, chain(k))
				}
			}
			break
		}
		return c
	}
	for _, n := range children[0] {
		v.Tree = append(v.Tree, chain(n))
	}
	for n := 1; n <= len(x.Versions); n++ { // a version whose parent is missing: a root of its own
		if !seen[n] {
			v.Tree = append(v.Tree, chain(n))
		}
	}
	return v
}

// viewVersion describes version ver of x, with answers about it.
func viewVersion(x *core.Session, ver *core.Version, answers []answerView) *versionView {
	v := &versionView{N: ver.N, Parent: ver.Parent, Head: ver.N == x.Head, Revised: ver.RevisedPrompt, Answers: answers}
	v.Image = imageOf(x, "", ver.N, ver.Image)
	if ver.Original != nil {
		o := imageOf(x, "", ver.N, *ver.Original)
		o.Alt = "the provider's own image of v" + fmt.Sprint(ver.N) + ", before it was composited"
		v.Original = &o
	}
	t := x.Turn(ver.Turn)
	if t == nil {
		v.Label = "made by a turn not recorded"
		return v
	}
	v.Label = label(t.Kind, ver.Parent)
	v.Prompt, v.Answer = t.Prompt, t.Answer
	if v.Revised == v.Prompt {
		v.Revised = ""
	}
	v.Flags = flagList(t.Flags)
	v.Provider, v.Model = t.Provider, t.Model
	if v.Model == v.Provider {
		v.Model = ""
	}
	v.Cost = core.FormatCost(t.CostUSD)
	if !t.StartedAt.IsZero() && !t.FinishedAt.IsZero() {
		v.Took = t.FinishedAt.Sub(t.StartedAt).Round(100 * time.Millisecond).String()
	}
	v.By, v.Asked = person(t.User), t.QueuedAt
	return v
}

// imageOf describes image ref of version n of x, whose URL is under
// prefix (relative to the page showing it). Its alternative text is the
// prompt that made it.
func imageOf(x *core.Session, prefix string, n int, ref core.ImageRef) imageView {
	alt := fmt.Sprintf("v%d", n)
	if ver := x.Version(n); ver != nil {
		if t := x.Turn(ver.Turn); t != nil && t.Prompt != "" {
			alt += ": " + core.Truncate(t.Prompt, 300)
		}
	}
	return imageView{URL: prefix + x.ID + "/img/" + ref.SHA256, Alt: alt, Width: ref.Width, Height: ref.Height}
}

// label says how a version of kind was made from parent.
func label(kind core.TurnKind, parent int) string {
	name := strings.ReplaceAll(string(kind), "_", " ")
	switch {
	case kind == core.KindGenerate || parent == 0:
		return name
	default:
		return fmt.Sprintf("%s of v%d", name, parent)
	}
}

// flagList lists the flags set in f, as a user would type them.
func flagList(f core.Flags) []string {
	var out []string
	add := func(name, value string) {
		if value != "" {
			out = append(out, "--"+name+" "+value)
		}
	}
	add("ar", f.Aspect)
	add("size", f.Size)
	add("quality", f.Quality)
	if f.N > 0 {
		add("n", fmt.Sprint(f.N))
	}
	add("model", f.Model)
	add("provider", f.Provider)
	if f.Transparent {
		out = append(out, "--transparent")
	}
	add("format", f.Format)
	if f.Seed != nil {
		add("seed", fmt.Sprint(*f.Seed))
	}
	add("no", f.Avoid)
	add("region", f.Region)
	if f.StrictRegion != nil {
		out = append(out, map[bool]string{true: "--strict-region", false: "--strict-region=off"}[*f.StrictRegion])
	}
	return out
}

// viewTurn describes turn t for the turns table.
func viewTurn(t *core.Turn) turnView {
	v := turnView{
		ID: t.ID, Queued: t.QueuedAt, Kind: label(t.Kind, 0), By: person(t.User), Text: t.Text,
		Status: string(t.Status), Provider: t.Provider, Cost: core.FormatCost(t.CostUSD), Error: t.Error,
	}
	if t.Kind == "" {
		v.Kind = string(t.Action)
	}
	if t.Model != "" && t.Model != t.Provider {
		v.Provider += " " + t.Model
	}
	outs := make([]string, len(t.Outputs))
	for i, n := range t.Outputs {
		outs[i] = fmt.Sprintf("v%d", n)
	}
	v.Outputs = strings.Join(outs, ", ")
	u := t.Usage
	if n := u.InputTextTokens + u.InputImageTokens + u.OutputTokens + u.ConversationInputTokens + u.ConversationOutputTokens; n > 0 {
		v.Tokens = fmt.Sprintf("%d in, %d out", u.InputTextTokens+u.InputImageTokens+u.ConversationInputTokens, u.OutputTokens+u.ConversationOutputTokens)
	}
	return v
}
