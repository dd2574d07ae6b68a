package gallery

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/core/usage"
)

// securityHeaders are on every answer, errors included.
var securityHeaders = map[string]string{
	"Content-Security-Policy": contentSecurityPolicy,
	"Referrer-Policy":         "no-referrer",
	"X-Frame-Options":         "DENY",
	"X-Content-Type-Options":  "nosniff",
}

func checkHeaders(t *testing.T, target string, res *http.Response) {
	t.Helper()
	for name, want := range securityHeaders {
		if got := res.Header.Get(name); got != want {
			t.Errorf("GET %s: %s = %q, want %q", target, name, got, want)
		}
	}
	if csp := res.Header.Get("Content-Security-Policy"); strings.Contains(csp, "unsafe") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("GET %s: a lax Content-Security-Policy %q", target, csp)
	}
}

func TestSessionPage(t *testing.T) {
	f := newFixture(t)
	res := f.get(t, f.sessionLink(t, treeID))
	page := body(t, res)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("status %d, %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	checkHeaders(t, "the session page", res)
	x := f.store.sessions[treeID]
	for _, want := range []string{
		"<h1>Session " + treeID + "</h1>",
		`<h2 id="tree">Version tree</h2>`,
		// v1 has two children, so each starts a branch.
		`<ul class="branches"><li><ol class="chain">`,
		`<li class="version head" id="v2">`,
		`alt="v1: a red fox"`,
		`src="` + treeID + `/img/` + x.Versions[0].Image.SHA256 + `"`,
		`width="64" height="48"`,
		"a green fox, drawn in watercolour", // the revised prompt
		"A fox, painted green.",             // the answer in words
		"what animal is it?",
		"<code>--ar 4:3</code> <code>--size 1024x768</code>",
		"<dd>openai</dd>", "<dd>gpt-image-2</dd>", "<dd>$0.042</dd>", "<dd>1m0s</dd>",
		"alice (U0ALICE)", "bob (U0BOB)",
		`<time datetime="2026-03-04T11:00:00Z">2026-03-04 11:00 UTC</time>`,
		"refine of v1", "branch of v1",
		`href="` + treeID + `/img/` + x.Versions[2].Original.SHA256 + `">The provider's own image</a>`,
		"The provider refused this request.", // the failed turn
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	// A session link shows no way to the rest of the gallery.
	if strings.Contains(page, "usage") || strings.Contains(page, `href="../"`) {
		t.Error("a session link's page links to the whole gallery")
	}
	if page := body(t, f.get(t, "/gallery/s/"+treeID+"?"+signature(t, f.galleryLink(t)).Encode())); !strings.Contains(page, `href="../usage"`) {
		t.Error("a gallery link's session page lacks the way to the usage page")
	}
}

func TestUserTextIsEscaped(t *testing.T) {
	f := newFixture(t)
	page := body(t, f.get(t, f.sessionLink(t, treeID)))
	for _, bad := range []string{"<script", "<img src=x", "\x1b", "\x00", "\u202e", "\u2066", "\x9b", "\u009b", "\x7f"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page holds %q as typed", bad)
		}
	}
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt; &#34;quoted&#34; &amp; a fox", `alt="v3: &lt;script&gt;`} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks the escaped prompt %s", want)
		}
	}
	if err := coretest.Inert(page); err != nil {
		t.Error(err)
	}
	// Only the page's own tags: no element but those the templates write.
	for _, tag := range regexp.MustCompile(`<([a-zA-Z0-9]+)`).FindAllStringSubmatch(page, -1) {
		switch tag[1] {
		case "html", "head", "meta", "title", "link", "body", "a", "header", "main", "h1", "h2", "h3", "dl", "dt", "dd",
			"ol", "ul", "li", "figure", "img", "figcaption", "span", "p", "code", "div", "table", "thead", "tbody", "tr", "th", "td", "time":
		default:
			t.Errorf("the page has a <%s> element", tag[1])
		}
	}
}

func TestImagesAreServedAsStored(t *testing.T) {
	f := newFixture(t)
	x := f.store.sessions[treeID]
	cookie := f.get(t, f.sessionLink(t, treeID)).Cookies()
	for _, ref := range []core.ImageRef{x.Versions[0].Image, x.Versions[2].Image, *x.Versions[2].Original} {
		target := "/gallery/s/" + treeID + "/img/" + ref.SHA256
		res := f.get(t, target, cookie...)
		got := body(t, res)
		want, err := os.ReadFile(f.images.Locate(ref))
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != http.StatusOK || got != string(want) {
			t.Fatalf("GET %s: %d, %d bytes; want the %d bytes stored", target, res.StatusCode, len(got), len(want))
		}
		checkHeaders(t, target, res)
		for name, want := range map[string]string{
			"Content-Type":   "image/png",
			"Content-Length": fmt.Sprint(len(want)),
			"Cache-Control":  "private, max-age=31536000, immutable",
			"ETag":           `"` + ref.SHA256 + `"`,
		} {
			if got := res.Header.Get(name); got != want {
				t.Errorf("GET %s: %s = %q, want %q", target, name, got, want)
			}
		}
		req := httptest.NewRequest(http.MethodGet, target, nil)
		req.Header.Set("If-None-Match", `"`+ref.SHA256+`"`)
		for _, c := range cookie {
			req.AddCookie(c)
		}
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, req)
		if res := w.Result(); res.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s If-None-Match its ETag: %d, want 304", target, res.StatusCode)
		}
	}
}

func TestImagePathsAreChecked(t *testing.T) {
	f := newFixture(t)
	x, other := f.store.sessions[treeID], f.store.sessions[otherID]
	cookie := f.get(t, f.galleryLink(t)).Cookies()
	hash := x.Versions[0].Image.SHA256
	base := "/gallery/s/" + treeID + "/img/"
	for _, name := range []string{
		"..%2F..%2F..%2F..%2Fetc%2Fpasswd",
		"..%2f" + hash,
		"%2e%2e",
		strings.ToUpper(hash),
		hash + ".png",
		hash[:63],
		hash + "0",
		strings.Repeat("a", 64),        // no such image
		other.Versions[0].Image.SHA256, // another session's image
		"%00" + hash[1:],
		strings.Repeat("%2e", 5000),
	} {
		res := f.get(t, base+name, cookie...)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s%.80s: %d, want 404", base, name, res.StatusCode)
		}
		checkHeaders(t, base+name, res)
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("GET %s%.80s: Content-Type %s", base, name, ct)
		}
	}
	// Paths that escape /gallery/s/ID/img/ are cleaned by the mux into a
	// redirect, never served.
	for _, target := range []string{base + "../../../../etc/passwd", "/gallery/s/../../etc/passwd", "/gallery/s/" + treeID + "/img/./" + hash} {
		if res := f.get(t, target, cookie...); res.StatusCode == http.StatusOK {
			t.Errorf("GET %s: 200", target)
		}
	}
}

func TestMissingThingsLookAlike(t *testing.T) {
	f := newFixture(t)
	sig := signature(t, f.galleryLink(t)).Encode()
	var notFound string
	for _, target := range []string{
		"/gallery/s/nosuchsession?" + sig,
		"/gallery/s/" + strings.Repeat("z", maxIDLen+1) + "?" + sig,
		"/gallery/s/bad%20id?" + sig,
		"/gallery/s/nosuchsession/img/" + strings.Repeat("a", 64) + "?" + sig,
		"/gallery/nothing-here",
		"/gallery/s/",
	} {
		res := f.get(t, target)
		checkHeaders(t, target, res)
		b := sameShape(body(t, res))
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %.80s: %d, want 404", target, res.StatusCode)
		}
		if notFound == "" {
			notFound = b
		} else if b != notFound {
			t.Errorf("GET %.80s: a 404 page unlike the others:\n%s", target, b)
		}
	}
	// Without a signature, a session that exists and one that does not get
	// the same answer.
	a, b := f.get(t, "/gallery/s/"+treeID), f.get(t, "/gallery/s/nosuchsession")
	if a.StatusCode != http.StatusForbidden || b.StatusCode != http.StatusForbidden || body(t, a) != body(t, b) {
		t.Errorf("unsigned: %d and %d, or unlike pages, for a session that exists and one that does not", a.StatusCode, b.StatusCode)
	}
	// A signed link to a session since deleted.
	link, _ := f.linker.SessionLink("deletedsession", time.Hour)
	if res := f.get(t, link); res.StatusCode != http.StatusNotFound {
		t.Errorf("a signed link to a missing session: %d, want 404", res.StatusCode)
	}
}

func TestStoreFailureShowsNoDetail(t *testing.T) {
	f := newFixture(t)
	f.store.fail = errors.New("pq: password authentication failed for user easel at db.internal:5432")
	for _, target := range []string{f.galleryLink(t), f.sessionLink(t, treeID)} {
		res := f.get(t, target)
		b := body(t, res)
		if res.StatusCode != http.StatusInternalServerError || strings.Contains(b, "password") || strings.Contains(b, "db.internal") {
			t.Errorf("GET %s with the store failing: %d\n%s", target, res.StatusCode, b)
		}
	}
}

func TestSearch(t *testing.T) {
	f := newFixture(t)
	cookie := f.get(t, f.galleryLink(t)).Cookies()
	list := func(q url.Values) (int, string) {
		res := f.get(t, pageURL("/gallery/", q), cookie...)
		checkHeaders(t, "the list", res)
		return res.StatusCode, body(t, res)
	}
	for q, want := range map[string][]string{
		"":                              {treeID, otherID},
		"q=GREEN":                       {treeID}, // the revised prompt, any case
		"q=harbour":                     {otherID},
		"q=painted":                     {treeID}, // an answer
		"q=nothing+like+it":             nil,
		"user=bob":                      {treeID, otherID},
		"user=U0ALICE":                  {treeID},
		"channel=C0OTHER":               {otherID},
		"from=2026-03-04":               {treeID},
		"to=2026-03-03":                 {otherID},
		"from=2026-03-03&to=2026-03-03": {otherID},
		"q=fox&user=alice&channel=c0art&from=2026-03-01&to=2026-03-31": {treeID},
	} {
		v, _ := url.ParseQuery(q)
		status, page := list(v)
		if status != http.StatusOK {
			t.Errorf("search %s: %d", q, status)
			continue
		}
		for _, id := range []string{treeID, otherID} {
			found := strings.Contains(page, `href="s/`+id+`"`)
			if found != contains(strings.Join(want, " "), id) {
				t.Errorf("search %s: found %s is %v, want %v", q, id, found, !found)
			}
		}
	}
	// Newest first: the tree (today) before the other (yesterday).
	_, page := list(nil)
	if strings.Index(page, treeID) > strings.Index(page, otherID) {
		t.Error("the list is not newest first")
	}
	// The form keeps what was searched, escaped.
	_, page = list(url.Values{"q": {`"><script>`}})
	if !strings.Contains(page, `value="&#34;&gt;&lt;script&gt;"`) {
		t.Error("the search field does not keep the search, escaped")
	}

	for q, want := range map[string]string{
		"q=" + strings.Repeat("x", maxParam+1):  "the q field is longer than 200 bytes",
		"user=" + strings.Repeat("%FF", 100000): "the user field is longer than 200 bytes",
		"from=yesterday":                        "the from date must be written YYYY-MM-DD",
		"to=2026-02-30":                         "the to date must be written YYYY-MM-DD",
		"from=2026-03-04&to=2026-03-01":         "the to date is before the from date",
		"page=0":                                "the page must be a number",
		"page=-1":                               "the page must be a number",
		"page=99999999999999999999999":          "the page must be a number",
		"page=1e3":                              "the page must be a number",
	} {
		v, _ := url.ParseQuery(q)
		status, page := list(v)
		if status != http.StatusBadRequest || !strings.Contains(page, want) || !strings.Contains(page, `role="search"`) {
			t.Errorf("search %.60s: %d, want 400 saying %q with the form", q, status, want)
		}
	}
	// A malformed query as a whole is read as far as it goes, never a panic.
	if res := f.get(t, "/gallery/?q=%zz&page=%&&&=&user=%", cookie...); res.StatusCode != http.StatusOK && res.StatusCode != http.StatusBadRequest {
		t.Errorf("a malformed query: %d", res.StatusCode)
	}
}

func TestPagination(t *testing.T) {
	f := newFixture(t)
	for i := range 45 {
		id := fmt.Sprintf("extra%02d", i)
		f.store.sessions[id] = &core.Session{ID: id, Platform: "console", CreatedAt: now.Add(-time.Duration(i+1) * time.Hour),
			Turns: []core.Turn{{ID: 1, Kind: core.KindGenerate, Prompt: fmt.Sprintf("study %02d", i)}}}
	}
	cookie := f.get(t, f.galleryLink(t)).Cookies()
	seen := map[string]bool{}
	next := "/gallery/?q=study"
	for page := 1; next != ""; page++ {
		b := body(t, f.get(t, next, cookie...))
		ids := regexp.MustCompile(`<h2><a href="s/(extra\d\d)"`).FindAllStringSubmatch(b, -1)
		wantN := perPage
		if page == 3 {
			wantN = 5
		}
		if len(ids) != wantN || !strings.Contains(b, fmt.Sprintf("45 sessions found, page %d of 3", page)) {
			t.Fatalf("page %d: %d sessions, want %d:\n%s", page, len(ids), wantN, b)
		}
		for _, m := range ids {
			if seen[m[1]] {
				t.Errorf("%s on two pages", m[1])
			}
			seen[m[1]] = true
		}
		next = ""
		if m := regexp.MustCompile(`<a href="([^"]+)" rel="next">`).FindStringSubmatch(b); m != nil {
			next = "/gallery/" + strings.TrimPrefix(strings.ReplaceAll(m[1], "&amp;", "&"), "./")
		}
	}
	if len(seen) != 45 {
		t.Errorf("%d sessions over the pages, want 45", len(seen))
	}
	// A page past the end shows the last.
	if b := body(t, f.get(t, "/gallery/?q=study&page=999", cookie...)); !strings.Contains(b, "page 3 of 3") {
		t.Error("page 999 does not show the last page")
	}
}

func TestUsagePage(t *testing.T) {
	f := newFixture(t)
	cookie := f.get(t, f.galleryLink(t)).Cookies()
	res := f.get(t, "/gallery/usage", cookie...)
	page := body(t, res)
	checkHeaders(t, "/gallery/usage", res)
	rep, err := usage.Build(t.Context(), f.store, f.g.cfg.Limits, f.g.cfg.Admins, usage.Filter{}, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), now)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"<h1>Usage in March 2026 (UTC)</h1>",
		"Today is 2026-03-04.",
		"Limits: " + rep.Limits.String(),
		"<th scope=\"row\">slack/U0ALICE (admin, exempt)</th><td>2 of 50</td><td>2</td><td>2</td><td>$0.042</td>",
		"<th scope=\"row\">slack/U0BOB</th><td>0 of 50</td><td>1</td><td>3</td><td>$0.051</td>",
		"<th scope=\"row\">slack/T0WORK</th><td>3</td><td>5</td><td>$0.093</td><td>-</td>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the usage page lacks %s", want)
		}
	}
	if b := body(t, f.get(t, "/gallery/usage?month=2026-02", cookie...)); !strings.Contains(b, "No user made an image in this month.") || strings.Contains(b, "Today is") {
		t.Error("the usage page of February shows March")
	}
	for _, m := range []string{"2026-13", "March", "2026-3", strings.Repeat("9", 10000)} {
		if res := f.get(t, "/gallery/usage?month="+url.QueryEscape(m), cookie...); res.StatusCode != http.StatusBadRequest {
			t.Errorf("usage month %.20s: %d, want 400", m, res.StatusCode)
		}
	}
}

func TestStyleSheet(t *testing.T) {
	f := newFixture(t)
	res := f.get(t, "/gallery/style.css")
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/css; charset=utf-8" {
		t.Errorf("GET the style sheet: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	checkHeaders(t, "/gallery/style.css", res)
}

func TestPagesAreGzippedForBrowsersThatTakeIt(t *testing.T) {
	f := newFixture(t)
	link := strings.TrimPrefix(f.sessionLink(t, treeID), f.srv.URL)
	plain := body(t, f.get(t, link))
	for enc, want := range map[string]bool{"gzip, deflate, br": true, "GZIP": true, "br;q=1, gzip;q=0.5": true, "gzip;q=0": false, "br": false, "": false} {
		r := httptest.NewRequest(http.MethodGet, link, nil)
		r.Header.Set("Accept-Encoding", enc)
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, r)
		res := w.Result()
		if got := res.Header.Get("Content-Encoding") == "gzip"; got != want || res.Header.Get("Vary") != "Accept-Encoding" {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, Vary %q; want gzip %v", enc, res.Header.Get("Content-Encoding"), res.Header.Get("Vary"), want)
			continue
		}
		if !want {
			continue
		}
		zr, err := gzip.NewReader(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		page, err := io.ReadAll(zr)
		if err != nil || string(page) != plain || res.Header.Get("Content-Length") != fmt.Sprint(w.Body.Len()) {
			t.Errorf("Accept-Encoding %q: the gzipped page differs from the plain one (%v)", enc, err)
		}
	}
}
