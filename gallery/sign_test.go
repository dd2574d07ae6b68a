package gallery

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLinkOpensItsScopeOnly(t *testing.T) {
	f := newFixture(t)
	treeImg := "/gallery/s/" + treeID + "/img/" + f.store.sessions[treeID].Versions[0].Image.SHA256
	otherImg := "/gallery/s/" + otherID + "/img/" + f.store.sessions[otherID].Versions[0].Image.SHA256
	sessionSig := signature(t, f.sessionLink(t, treeID)).Encode()
	gallerySig := signature(t, f.galleryLink(t)).Encode()
	for _, tc := range []struct {
		target string
		want   int
	}{
		{"/gallery/s/" + treeID + "?" + sessionSig, http.StatusOK},
		{treeImg + "?" + sessionSig, http.StatusOK},
		{"/gallery/s/" + otherID + "?" + sessionSig, http.StatusForbidden},
		{otherImg + "?" + sessionSig, http.StatusForbidden},
		{"/gallery/?" + sessionSig, http.StatusForbidden},
		{"/gallery/usage?" + sessionSig, http.StatusForbidden},
		{"/gallery/s/" + treeID + "x?" + sessionSig, http.StatusForbidden},
		{"/gallery/s/" + strings.ToUpper(treeID) + "?" + sessionSig, http.StatusForbidden},

		{"/gallery/?" + gallerySig, http.StatusOK},
		{"/gallery/usage?" + gallerySig, http.StatusOK},
		{"/gallery/s/" + treeID + "?" + gallerySig, http.StatusOK},
		{"/gallery/s/" + otherID + "?" + gallerySig, http.StatusOK},
		{otherImg + "?" + gallerySig, http.StatusOK},
		{"/gallery/s/nosuchsession?" + gallerySig, http.StatusNotFound},

		{"/gallery/", http.StatusForbidden},
		{"/gallery/usage", http.StatusForbidden},
		{"/gallery/s/" + treeID, http.StatusForbidden},
		{treeImg, http.StatusForbidden},
	} {
		res := f.get(t, tc.target)
		if res.StatusCode != tc.want {
			t.Errorf("GET %s: %d, want %d", tc.target, res.StatusCode, tc.want)
		}
	}
}

func TestTamperedLinksAreRefused(t *testing.T) {
	f := newFixture(t)
	link := f.sessionLink(t, treeID)
	q := signature(t, link)
	exp, sig := q.Get("exp"), q.Get("sig")
	flip := func(s string, i int) string { // s with its i-th character changed
		c := byte('A')
		if s[i] == 'A' {
			c = 'B'
		}
		return s[:i] + string(c) + s[i+1:]
	}
	e, _ := strconv.ParseInt(exp, 10, 64)
	path := "/gallery/s/" + treeID
	refused := map[string]string{
		"no signature":          path,
		"no sig":                path + "?exp=" + exp,
		"no exp":                path + "?sig=" + sig,
		"exp later":             path + "?exp=" + strconv.FormatInt(e+1, 10) + "&sig=" + sig,
		"exp earlier":           path + "?exp=" + strconv.FormatInt(e-1, 10) + "&sig=" + sig,
		"exp with a zero":       path + "?exp=0" + exp + "&sig=" + sig,
		"exp with a sign":       path + "?exp=%2B" + exp + "&sig=" + sig,
		"exp not a number":      path + "?exp=tomorrow&sig=" + sig,
		"exp huge":              path + "?exp=" + strings.Repeat("9", 40) + "&sig=" + sig,
		"sig first changed":     path + "?exp=" + exp + "&sig=" + flip(sig, 0),
		"sig last changed":      path + "?exp=" + exp + "&sig=" + flip(sig, len(sig)-1),
		"sig shortened":         path + "?exp=" + exp + "&sig=" + sig[:len(sig)-1],
		"sig lengthened":        path + "?exp=" + exp + "&sig=" + sig + "A",
		"sig padded":            path + "?exp=" + exp + "&sig=" + sig + "%3D",
		"sig in std base64":     path + "?exp=" + exp + "&sig=" + strings.NewReplacer("-", "+", "_", "/").Replace(sig) + "%2B",
		"sig huge":              path + "?exp=" + exp + "&sig=" + strings.Repeat("A", 100000),
		"id changed":            "/gallery/s/" + flip(treeID, 0) + "?exp=" + exp + "&sig=" + sig,
		"id of another session": "/gallery/s/" + otherID + "?exp=" + exp + "&sig=" + sig,
		"used on the list":      "/gallery/?exp=" + exp + "&sig=" + sig,
	}
	var refusal string
	for name, target := range refused {
		res := f.get(t, target)
		b := sameShape(body(t, res))
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("%s: GET %.200s: %d, want 403", name, target, res.StatusCode)
		}
		if len(res.Cookies()) > 0 {
			t.Errorf("%s: a refused request set cookies %v", name, res.Cookies())
		}
		if refusal == "" {
			refusal = b
		} else if b != refusal {
			t.Errorf("%s: the 403 page differs from another's:\n%s\n---\n%s", name, b, refusal)
		}
	}
	for _, leak := range []string{treeID, otherID, "fox", "harbour"} {
		if strings.Contains(refusal, leak) {
			t.Errorf("the 403 page shows %q:\n%s", leak, refusal)
		}
	}

	// Signed with another key.
	other, err := NewLinker([]byte(strings.Repeat("x", MinKeyBytes)), f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := other.GalleryLink(time.Hour)
	if res := f.get(t, forged); res.StatusCode != http.StatusForbidden {
		t.Errorf("a link signed with another key: %d, want 403", res.StatusCode)
	}
}

func TestLinksExpire(t *testing.T) {
	f := newFixture(t)
	link, err := f.linker.SessionLink(treeID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	res := f.get(t, link)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("a fresh link: %d", res.StatusCode)
	}
	cookies := res.Cookies()
	for _, later := range []time.Duration{time.Hour, time.Hour + time.Second, 1000 * time.Hour} {
		f.g.now = func() time.Time { return now.Add(later) }
		if res := f.get(t, link); res.StatusCode != http.StatusForbidden {
			t.Errorf("the link %s later: %d, want 403", later, res.StatusCode)
		}
		if res := f.get(t, "/gallery/s/"+treeID, cookies...); res.StatusCode != http.StatusForbidden {
			t.Errorf("its cookie %s later: %d, want 403", later, res.StatusCode)
		}
	}
	f.g.now = func() time.Time { return now.Add(time.Hour - time.Second) }
	if res := f.get(t, link); res.StatusCode != http.StatusOK {
		t.Errorf("the link a second before it expires: %d, want 200", res.StatusCode)
	}
}

func TestCookieCarriesTheScope(t *testing.T) {
	f := newFixture(t)
	res := f.get(t, f.sessionLink(t, treeID))
	if res.StatusCode != http.StatusOK || len(res.Cookies()) != 1 {
		t.Fatalf("GET a session link: %d, cookies %v", res.StatusCode, res.Cookies())
	}
	c := res.Cookies()[0]
	if c.Name != cookieSession || c.Path != "/gallery/s/"+treeID || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.MaxAge <= 0 || c.MaxAge > 24*3600+1 {
		t.Errorf("cookie %+v: want %s for path /gallery/s/%s, HttpOnly, SameSite=Strict, for a day", c, cookieSession, treeID)
	}
	img := "/gallery/s/" + treeID + "/img/" + f.store.sessions[treeID].Versions[1].Image.SHA256
	for target, want := range map[string]int{
		"/gallery/s/" + treeID:  http.StatusOK,
		img:                     http.StatusOK,
		"/gallery/s/" + otherID: http.StatusForbidden, // a browser would not even send it there
		"/gallery/":             http.StatusForbidden,
		"/gallery/usage":        http.StatusForbidden,
	} {
		if res := f.get(t, target, c); res.StatusCode != want {
			t.Errorf("GET %s with the session cookie: %d, want %d", target, res.StatusCode, want)
		}
	}
	// The cookie's value, renamed to the gallery's, opens nothing more.
	forged := &http.Cookie{Name: cookieAll, Value: c.Value}
	if res := f.get(t, "/gallery/", forged); res.StatusCode != http.StatusForbidden {
		t.Errorf("a session cookie renamed to the gallery's: %d, want 403", res.StatusCode)
	}
	tampered := &http.Cookie{Name: cookieSession, Value: c.Value[:len(c.Value)-1] + "A"}
	if c.Value[len(c.Value)-1] == 'A' {
		tampered.Value = c.Value[:len(c.Value)-1] + "B"
	}
	if res := f.get(t, "/gallery/s/"+treeID, tampered); res.StatusCode != http.StatusForbidden {
		t.Errorf("a tampered cookie: %d, want 403", res.StatusCode)
	}

	res = f.get(t, f.galleryLink(t))
	if len(res.Cookies()) != 1 || res.Cookies()[0].Name != cookieAll || res.Cookies()[0].Path != "/gallery/" {
		t.Fatalf("GET the gallery link: cookies %v, want %s for /gallery/", res.Cookies(), cookieAll)
	}
	for _, target := range []string{"/gallery/", "/gallery/usage", "/gallery/s/" + otherID, img} {
		if res := f.get(t, target, res.Cookies()[0]); res.StatusCode != http.StatusOK {
			t.Errorf("GET %s with the gallery cookie: %d, want 200", target, res.StatusCode)
		}
	}
}

func TestLinkerRefusesBadInput(t *testing.T) {
	if _, err := NewLinker(testKey[:MinKeyBytes-1], "https://easel.example.com"); err == nil {
		t.Error("NewLinker took a 31-byte key")
	}
	for _, u := range []string{"", "easel.example.com", "ftp://easel.example.com", "https://u:p@easel.example.com", "https://easel.example.com/?a=b", "https://easel.example.com/#x"} {
		if _, err := NewLinker(testKey, u); err == nil {
			t.Errorf("NewLinker took public URL %q", u)
		}
	}
	l, err := NewLinker(testKey, "https://easel.example.com/prefix/")
	if err != nil {
		t.Fatal(err)
	}
	for _, ttl := range []time.Duration{0, -time.Hour, MaxTTL + time.Second} {
		if _, err := l.SessionLink(treeID, ttl); err == nil {
			t.Errorf("SessionLink took lifetime %s", ttl)
		}
	}
	for _, id := range []string{"", "../x", "a/b", "a b", "a?b", strings.Repeat("a", maxIDLen+1)} {
		if _, err := l.SessionLink(id, time.Hour); err == nil {
			t.Errorf("SessionLink took id %q", id)
		}
	}
	link, err := l.SessionLink(treeID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(link)
	if u.Path != "/prefix/gallery/s/"+treeID || u.Query().Get("exp") == "" || len(u.Query().Get("sig")) != sigChars {
		t.Errorf("SessionLink = %s", link)
	}
	if _, err := New(Config{Key: testKey[:10]}, nil, nil); err == nil {
		t.Error("New took a 10-byte key")
	}
}

func TestCookiePathUnderAPrefix(t *testing.T) {
	f := newFixture(t)
	f.g.cfg.BasePath = "/easel"
	res := f.get(t, f.sessionLink(t, treeID))
	if c := res.Cookies(); len(c) != 1 || c[0].Path != "/easel/gallery/s/"+treeID {
		t.Errorf("cookies %v under the prefix /easel, want the path /easel/gallery/s/%s", c, treeID)
	}
}
