package gallery

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/easel-bot/easel/core"
)

// Bounds of the list's query, checked before any work.
const (
	perPage     = 20
	maxParam    = 200 // bytes of one search field
	maxPageText = 6   // digits of a page number
)

// search is the list page's form, as submitted.
type search struct {
	Q, User, Channel, From, To string

	from, to time.Time // the dates parsed; zero when not given
	page     int
}

// parseSearch reads the list page's query, or says what is wrong with it.
func parseSearch(q url.Values) (search, error) {
	s := search{Q: q.Get("q"), User: q.Get("user"), Channel: q.Get("channel"), From: q.Get("from"), To: q.Get("to"), page: 1}
	for name, v := range map[string]string{"q": s.Q, "user": s.User, "channel": s.Channel, "from": s.From, "to": s.To, "page": q.Get("page")} {
		if len(v) > maxParam {
			return search{}, fmt.Errorf("the %s field is longer than %d bytes", name, maxParam)
		}
	}
	s.Q, s.User, s.Channel = strings.TrimSpace(s.Q), strings.TrimSpace(s.User), strings.TrimSpace(s.Channel)
	var err error
	if s.from, err = parseDate(s.From); err != nil {
		return search{}, fmt.Errorf("the from date %w", err)
	}
	if s.to, err = parseDate(s.To); err != nil {
		return search{}, fmt.Errorf("the to date %w", err)
	}
	if !s.from.IsZero() && !s.to.IsZero() && s.to.Before(s.from) {
		return search{}, fmt.Errorf("the to date is before the from date")
	}
	if p := q.Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || len(p) > maxPageText {
			return search{}, fmt.Errorf("the page must be a number from 1 to %s", strings.Repeat("9", maxPageText))
		}
		s.page = n
	}
	return s, nil
}

// parseDate reads a date written YYYY-MM-DD (UTC), or "" for none.
func parseDate(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	d, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("must be written YYYY-MM-DD, such as 2026-03-04")
	}
	return d, nil
}

// query returns s as a query for page, leaving out empty fields.
func (s search) query(page int) url.Values {
	q := url.Values{}
	for name, v := range map[string]string{"q": s.Q, "user": s.User, "channel": s.Channel, "from": s.From, "to": s.To} {
		if v != "" {
			q.Set(name, v)
		}
	}
	if page > 1 {
		q.Set("page", strconv.Itoa(page))
	}
	return q
}

// Active reports whether s narrows the list.
func (s search) Active() bool {
	return s.Q != "" || s.User != "" || s.Channel != "" || s.From != "" || s.To != ""
}

// matches reports whether session x fits s: created within its dates, in
// a channel whose id contains its channel, with a person whose id or name
// contains its user, and a prompt (as typed or as the provider redrew it)
// or an answer containing its text; letters compare without case.
func (s search) matches(x *core.Session) bool {
	day := x.CreatedAt.UTC().Truncate(24 * time.Hour)
	if (!s.from.IsZero() && day.Before(s.from)) || (!s.to.IsZero() && day.After(s.to)) {
		return false
	}
	if s.Channel != "" && !contains(x.Channel, s.Channel) {
		return false
	}
	if s.User != "" && !slices.ContainsFunc(x.Turns, func(t core.Turn) bool { return contains(t.User.ID, s.User) || contains(t.User.Name, s.User) }) &&
		!contains(x.CreatedBy.ID, s.User) && !contains(x.CreatedBy.Name, s.User) {
		return false
	}
	if s.Q != "" && !slices.ContainsFunc(x.Turns, func(t core.Turn) bool { return contains(t.Prompt, s.Q) || contains(t.Answer, s.Q) }) &&
		!slices.ContainsFunc(x.Versions, func(v core.Version) bool { return contains(v.RevisedPrompt, s.Q) }) {
		return false
	}
	return true
}

// contains reports whether s contains sub, without regard to case.
func contains(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// listView is the list page.
type listView struct {
	Search      search
	Problem     string // why the search could not be read
	Sessions    []sessionItem
	Total       int // sessions matching
	Page, Pages int
	Newer       string // the previous page's URL, if any
	Older       string // the next page's URL, if any
}

// sessionItem is one session in the list.
type sessionItem struct {
	ID, URL  string
	Thumb    *imageView // the head version's image, if any
	Prompt   string     // the first prompt
	By       string
	Where    string // platform, workspace and channel
	Created  time.Time
	Versions int
	Turns    int
	Cost     string
}

// list serves the list of sessions, newest first, as searched.
func (g *Gallery) list(w http.ResponseWriter, r *http.Request) {
	s, err := parseSearch(r.URL.Query())
	if err != nil {
		g.render(w, r, http.StatusBadRequest, "list.html", listView{Problem: err.Error(), Page: 1, Pages: 1})
		return
	}
	all, err := g.store.Sessions(r.Context())
	if err != nil {
		g.storeFailed(w, r, err)
		return
	}
	var found []*core.Session
	for _, x := range all {
		if s.matches(x) {
			found = append(found, x)
		}
	}
	slices.SortStableFunc(found, func(a, b *core.Session) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	v := listView{Search: s, Total: len(found), Pages: max(1, (len(found)+perPage-1)/perPage)}
	v.Page = min(s.page, v.Pages)
	for _, x := range found[(v.Page-1)*perPage : min(len(found), v.Page*perPage)] {
		v.Sessions = append(v.Sessions, item(x))
	}
	if v.Page > 1 {
		v.Newer = pageURL("./", s.query(v.Page-1))
	}
	if v.Page < v.Pages {
		v.Older = pageURL("./", s.query(v.Page+1))
	}
	g.render(w, r, http.StatusOK, "list.html", v)
}

// item describes session x for the list.
func item(x *core.Session) sessionItem {
	it := sessionItem{
		ID: x.ID, URL: "s/" + x.ID, By: person(x.CreatedBy), Where: where(x), Created: x.CreatedAt,
		Versions: len(x.Versions), Turns: len(x.Turns), Cost: core.FormatCost(cost(x)),
	}
	if len(x.Turns) > 0 {
		it.Prompt = core.Truncate(x.Turns[0].Prompt, 140)
	}
	head := x.Head
	if x.Version(head) == nil {
		head = len(x.Versions)
	}
	if v := x.Version(head); v != nil {
		img := imageOf(x, "s/", v.N, v.Image)
		it.Thumb = &img
	}
	return it
}

// cost returns what the turns of x cost.
func cost(x *core.Session) float64 {
	var usd float64
	for _, t := range x.Turns {
		usd += t.CostUSD
	}
	return usd
}

// where names the platform, workspace and channel of x.
func where(x *core.Session) string {
	parts := []string{x.Platform}
	if x.Workspace != "" {
		parts = append(parts, x.Workspace)
	}
	if x.Channel != "" {
		parts = append(parts, "#"+x.Channel)
	}
	return strings.Join(parts, " · ")
}

// person names u: their name and id, or whichever is known.
func person(u core.User) string {
	switch {
	case u.Name != "" && u.ID != "" && u.Name != u.ID:
		return u.Name + " (" + u.ID + ")"
	case u.Name != "":
		return u.Name
	case u.ID != "":
		return u.ID
	default:
		return "someone"
	}
}
