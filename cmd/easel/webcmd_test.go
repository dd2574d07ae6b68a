package main

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/easel-bot/easel/config"
	"github.com/easel-bot/easel/storage"
	"github.com/easel-bot/easel/storage/imagedir"
)

// TestWebLinkOpensTheGallery: a link `easel web link` prints opens, on the
// web server of easel run, the session made with easel chat and its image,
// and a session's link opens nothing else.
func TestWebLinkOpensTheGallery(t *testing.T) {
	dir := t.TempDir()
	out, errOut, code := easel(t, "a red fox\n", nil, "chat", "--data", dir)
	if code != 0 {
		t.Fatalf("chat exited %d: %s", code, errOut)
	}
	id := sessionID(t, out)
	cfgFile := filepath.Join(dir, "easel.toml")
	if err := os.WriteFile(cfgFile, []byte("[web]\nlisten = \"127.0.0.1:0\"\npublic_url = \"https://easel.example.com/\"\n[storage]\ndir = \""+dir+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("s", 32)))
	environ := map[string]string{"EASEL_WEB_KEY": key}

	link := func(args ...string) string {
		t.Helper()
		out, errOut, code := easel(t, "", environ, append([]string{"web", "link", "-config", cfgFile}, args...)...)
		if code != 0 || strings.Contains(out+errOut, key) {
			t.Fatalf("easel web link %v exited %d: %s%s", args, code, out, errOut)
		}
		return strings.TrimSpace(out)
	}
	sessionLink, galleryLink := link("-session", id, "-ttl", "1h"), link()
	if !strings.HasPrefix(sessionLink, "https://easel.example.com/gallery/s/"+id+"?exp=") || !strings.HasPrefix(galleryLink, "https://easel.example.com/gallery/?exp=") {
		t.Fatalf("links %s and %s", sessionLink, galleryLink)
	}

	cfg, err := config.Load(cfgFile, func(k string) string { return environ[k] })
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	db, err := storage.OpenReadOnly(context.Background(), dir, storage.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	images, err := imagedir.ReadOnly(filepath.Join(dir, imagesDir), log)
	if err != nil {
		t.Fatal(err)
	}
	srv := newWeb(cfg, &app{cfg: cfg, db: db, images: images, log: log}, nil, log)
	get := func(link string, cookies ...*http.Cookie) (*http.Response, string) {
		u, err := url.Parse(link)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodGet, u.RequestURI(), nil)
		for _, c := range cookies {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, r)
		b, _ := io.ReadAll(w.Result().Body)
		return w.Result(), string(b)
	}
	res, page := get(sessionLink)
	if res.StatusCode != http.StatusOK || !strings.Contains(page, "a red fox") {
		t.Fatalf("the session link: %d\n%s", res.StatusCode, page)
	}
	s, err := db.Session(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	img, data := get("/gallery/s/"+id+"/img/"+s.Versions[0].Image.SHA256, res.Cookies()...)
	if want, _ := os.ReadFile(images.Locate(s.Versions[0].Image)); img.StatusCode != http.StatusOK || len(want) == 0 || data != string(want) {
		t.Errorf("the image with the link's cookie: %d, %d bytes; want the %d bytes stored", img.StatusCode, len(data), len(want))
	}
	if res, _ := get("/gallery/?"+strings.SplitN(sessionLink, "?", 2)[1], res.Cookies()...); res.StatusCode != http.StatusForbidden {
		t.Errorf("the session link on the list: %d, want 403", res.StatusCode)
	}
	res, page = get(galleryLink)
	if res.StatusCode != http.StatusOK || !strings.Contains(page, `href="s/`+id+`"`) {
		t.Errorf("the gallery link: %d\n%s", res.StatusCode, page)
	}
	if res, page := get("/gallery/usage", res.Cookies()...); res.StatusCode != http.StatusOK || !strings.Contains(page, `<th scope="row">console/`) {
		t.Errorf("the usage page with the gallery's cookie: %d\n%s", res.StatusCode, page)
	}
}

func TestWebLinkNeedsKeyAndURL(t *testing.T) {
	dir := t.TempDir()
	withURL := filepath.Join(dir, "easel.toml")
	if err := os.WriteFile(withURL, []byte("[web]\npublic_url = \"https://easel.example.com\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("s", 32)))
	for _, tc := range []struct {
		args    []string
		environ map[string]string
		code    int
		want    string
	}{
		{[]string{"link"}, map[string]string{"EASEL_WEB_KEY": key}, 1, "web.public_url is not set"},
		{[]string{"link", "-config", withURL}, nil, 1, "EASEL_WEB_KEY is not set"},
		{[]string{"link", "-config", withURL}, map[string]string{"EASEL_WEB_KEY": "c2hvcnQtc2VjcmV0LXZhbHVl"}, 1, "EASEL_WEB_KEY: must be base64 of at least 32 random bytes"},
		{[]string{"link", "-config", withURL, "-ttl", "0s"}, map[string]string{"EASEL_WEB_KEY": key}, 2, "-ttl must be more than 0"},
		{[]string{"link", "-config", withURL, "-ttl", "9000h"}, map[string]string{"EASEL_WEB_KEY": key}, 2, "at most 8784h0m0s"},
		{[]string{"link", "-config", withURL, "-session", "../etc"}, map[string]string{"EASEL_WEB_KEY": key}, 1, "is not a session id"},
		{[]string{"link", "extra"}, nil, 2, `unexpected argument "extra"`},
		{[]string{"lnk"}, nil, 2, "use: easel web link"},
	} {
		out, errOut, code := easel(t, "", tc.environ, append([]string{"web"}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("easel web %v: exit %d, stdout %q, stderr %q; want %d and %q", tc.args, code, out, errOut, tc.code, tc.want)
		}
		if strings.Contains(errOut, "c2hvcnQtc2VjcmV0LXZhbHVl") || strings.Contains(errOut, key) {
			t.Errorf("easel web %v shows the key: %s", tc.args, errOut)
		}
	}
	for _, args := range [][]string{{"web", "-help"}, {"web", "link", "-help"}} {
		if _, errOut, code := easel(t, "", nil, args...); code != 0 || !strings.Contains(errOut, "Usage: easel web link") {
			t.Errorf("easel %s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
	}
}

func TestResultLinksNeedTheGalleryServed(t *testing.T) {
	key := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("s", 32)))
	cfg := config.DefaultConfig()
	cfg.Web.Listen, cfg.Web.PublicURL, cfg.Secrets.WebKey = ":8080", "https://easel.example.com", key
	links := resultLinks(cfg)
	if links == nil || !strings.HasPrefix(links("abc"), "https://easel.example.com/gallery/s/abc?exp=") {
		t.Fatal("no result links with web.listen, web.public_url and EASEL_WEB_KEY set")
	}
	for name, unset := range map[string]func(*config.Config){
		"web.listen":     func(c *config.Config) { c.Web.Listen = "" },
		"web.public_url": func(c *config.Config) { c.Web.PublicURL = "" },
		"EASEL_WEB_KEY":  func(c *config.Config) { c.Secrets.WebKey = "" },
	} {
		c := cfg
		unset(&c)
		if resultLinks(c) != nil {
			t.Errorf("result links without %s", name)
		}
	}
}
