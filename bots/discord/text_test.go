package discord

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/imagecheck"
)

func TestClip(t *testing.T) {
	cases := []struct {
		in        string
		wantUnits int
		cut       bool
	}{
		{"short", 5, false},
		{strings.Repeat("a", 2000), 2000, false},
		{strings.Repeat("a", 2001), 2000, true},
		{strings.Repeat("😀", 1000), 2000, false}, // two UTF-16 units each
		{strings.Repeat("😀", 1001), 1999, true},
	}
	for _, c := range cases {
		got := clip(c.in)
		if units(got) != c.wantUnits || strings.HasSuffix(got, "…") != c.cut || !utf8.ValidString(got) {
			t.Errorf("clip(%d runes) = %d units, cut %v", utf8.RuneCountInString(c.in), units(got), strings.HasSuffix(got, "…"))
		}
	}
}

func TestButtonIDs(t *testing.T) {
	session := core.NewSessionID()
	for _, b := range core.Buttons {
		id := buttonID(b.Action, session, 12)
		if len(id) > 100 {
			t.Errorf("%s is longer than Discord's 100", id)
		}
		a, s, v, ok := parseButtonID(id)
		if !ok || a != b.Action || s != session || v != 12 {
			t.Errorf("parseButtonID(%q) = %s %s %d %v", id, a, s, v, ok)
		}
	}
	for _, id := range []string{"", "easel", "other:regenerate:abc:1", "easel:delete:abc:1", "easel:undo::1",
		"easel:undo:abc:0", "easel:undo:abc:x", "easel:undo:abc:1:2"} {
		if _, _, _, ok := parseButtonID(id); ok {
			t.Errorf("parseButtonID(%q) accepted it", id)
		}
	}
}

func TestInviteURL(t *testing.T) {
	const want = "https://discord.com/oauth2/authorize?client_id=123456789012345678&permissions=309237746752&scope=bot+applications.commands"
	if got := InviteURL("123456789012345678"); got != want {
		t.Errorf("InviteURL = %s\nwant %s", got, want)
	}
}

func TestThreadName(t *testing.T) {
	cases := map[string]string{
		"a red fox --ar 16:9":               "🎨 a red fox",
		"  ":                                "🎨 Easel",
		strings.Repeat("x", 99):             "🎨 " + strings.Repeat("x", 89) + "…",
		"a\u202efox\x1b[2J\nnext --ar 16:9": "🎨 afox[2J next",
		"\u202e\u2066 \x00":                 "🎨 Easel",
	}
	for in, want := range cases {
		if got := threadName(in); got != want || utf8.RuneCountInString(got) > 100 {
			t.Errorf("threadName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAPITransport(t *testing.T) {
	var got *http.Request
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r }))
	defer api.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "other") }))
	defer other.Close()
	base, _ := url.Parse(api.URL + "/proxy/discord/")
	client := &http.Client{Transport: newAPITransport(base, nil)}

	resp, err := client.Get("https://discord.com/api/v9/channels/1/messages/2/reactions/%E2%9C%85/@me?limit=5")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got.URL.EscapedPath() != "/proxy/discord/v9/channels/1/messages/2/reactions/%E2%9C%85/@me" || got.URL.RawQuery != "limit=5" {
		t.Errorf("rewritten to %s", got.URL)
	}
	resp, err = client.Get(other.URL + "/elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "other" {
		t.Error("a request elsewhere was rewritten")
	}
	def, _ := url.Parse(DefaultAPIURL)
	if _, wrapped := newAPITransport(def, http.DefaultTransport).(*apiTransport); wrapped {
		t.Error("Discord's own API root was wrapped")
	}
}

func TestCheckImage(t *testing.T) {
	var small bytes.Buffer
	_ = png.Encode(&small, image.NewRGBA(image.Rect(0, 0, 4, 3)))
	// A GIF header claiming 65535x65535 pixels: refused before decoding.
	huge := []byte("GIF89a")
	huge = binary.LittleEndian.AppendUint16(huge, 65535)
	huge = binary.LittleEndian.AppendUint16(huge, 65535)
	huge = append(huge, 0, 0, 0, ';')
	cases := []struct {
		name string
		data []byte
		want string // "" for accepted
	}{
		{"ok.png", small.Bytes(), ""},
		{"notes.txt", []byte("hello"), "not an image"},
		{"doc.pdf", []byte("%PDF-1.7\n"), "not an image"},
		{"cut.png", small.Bytes()[:20], "could not be read"},
		{"huge.gif", huge, "at most 40 megapixels"},
	}
	for _, c := range cases {
		img, err := imagecheck.Check(c.name, c.data, imagecheck.Limits{})
		switch {
		case c.want == "" && (err != nil || img.MIME != "image/png"):
			t.Errorf("%s: %v, %q", c.name, err, img.MIME)
		case c.want != "" && (core.KindOf(err) != core.Invalid || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want Invalid saying %q", c.name, err, c.want)
		}
	}
}
