package gallery

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// MinKeyBytes is the shortest signing key a Linker or a Gallery accepts.
const MinKeyBytes = 32

// MaxTTL is the longest a link may stay valid.
const MaxTTL = 366 * 24 * time.Hour

// A scope is what a signature opens: the whole gallery (scopeAll) or one
// session ("session:" and its id).
const (
	scopeAll     = "all"
	scopeSession = "session:"
)

// signContext is signed before the scope, so that no other HMAC made with
// the same key can pass for a gallery link.
const signContext = "easel gallery link v1\x00"

// Linker makes signed links to the gallery.
type Linker struct {
	key  []byte
	base string // the public URL, without a trailing slash
	now  func() time.Time
}

// NewLinker returns a Linker signing with key (at least MinKeyBytes) links
// under publicURL, the web server's address as people reach it (web.public_url).
func NewLinker(key []byte, publicURL string) (*Linker, error) {
	if len(key) < MinKeyBytes {
		return nil, fmt.Errorf("gallery: the signing key has %d bytes, want at least %d", len(key), MinKeyBytes)
	}
	u, err := url.Parse(publicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, errors.New("gallery: the public URL must be an http(s) URL without credentials, query or fragment")
	}
	return &Linker{key: key, base: strings.TrimSuffix(publicURL, "/"), now: time.Now}, nil
}

// SessionLink returns a link to session id's page, valid for ttl, which
// opens that session and its images only. Chat adapters put it beside a
// result as "Open in gallery".
func (l *Linker) SessionLink(id string, ttl time.Duration) (string, error) {
	if !validID(id) {
		return "", fmt.Errorf("gallery: %q is not a session id", id)
	}
	return l.link("/gallery/s/"+id, scopeSession+id, ttl)
}

// GalleryLink returns a link to the list of sessions, valid for ttl, which
// opens every page of the gallery: an administrator's link.
func (l *Linker) GalleryLink(ttl time.Duration) (string, error) {
	return l.link("/gallery/", scopeAll, ttl)
}

// link returns the signed link to path for scope.
func (l *Linker) link(path, scope string, ttl time.Duration) (string, error) {
	if ttl <= 0 || ttl > MaxTTL {
		return "", fmt.Errorf("gallery: a link's lifetime must be more than 0 and at most %s, got %s", MaxTTL, ttl)
	}
	exp := l.now().Add(ttl).Unix()
	q := url.Values{"exp": {strconv.FormatInt(exp, 10)}, "sig": {sign(l.key, scope, exp)}}
	return l.base + path + "?" + q.Encode(), nil
}

// sign returns the signature of scope until exp (Unix seconds): HMAC-SHA256
// in unpadded URL-safe base64.
func sign(key []byte, scope string, exp int64) string {
	return base64.RawURLEncoding.EncodeToString(mac(key, scope, exp))
}

func mac(key []byte, scope string, exp int64) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(signContext + scope + "\x00" + strconv.FormatInt(exp, 10)))
	return h.Sum(nil)
}

// Bounds of the signed fields as they arrive, checked before any work.
const (
	maxExpDigits = 12                                         // Unix seconds until the year 33658
	sigChars     = (sha256.Size*8 + 5) / 6                    // unpadded base64 of a SHA-256
	tokenSep     = "."                                        // between exp and sig in a cookie
	maxTokenLen  = maxExpDigits + len(tokenSep) + sigChars    // a cookie's value
	maxIDLen     = 128                                        // a session id
	idChars      = "abcdefghijklmnopqrstuvwxyz0123456789-_" + // a session id's characters
		"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
)

// verify reports whether sig signs scope until expText, and expText is
// still in the future at now. The signature is compared in constant time.
func verify(key []byte, scope, expText, sig string, now time.Time) (exp time.Time, ok bool) {
	if len(expText) == 0 || len(expText) > maxExpDigits || strings.Trim(expText, "0123456789") != "" || len(sig) != sigChars {
		return time.Time{}, false
	}
	e, err := strconv.ParseInt(expText, 10, 64)
	if err != nil || expText != strconv.FormatInt(e, 10) { // one spelling per expiry: no leading zeros
		return time.Time{}, false
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	if err != nil || !hmac.Equal(got, mac(key, scope, e)) {
		return time.Time{}, false
	}
	exp = time.Unix(e, 0)
	return exp, now.Before(exp)
}

// validID reports whether id can be a session id in a path and a scope.
func validID(id string) bool {
	return id != "" && len(id) <= maxIDLen && strings.Trim(id, idChars) == ""
}
