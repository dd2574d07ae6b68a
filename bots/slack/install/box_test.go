package install

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
)

func newKey(t *testing.T) []byte {
	t.Helper()
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return key
}

func TestSealOpen(t *testing.T) {
	box, err := NewBox(newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	const token = "xoxb-1234-secret"
	a, err := box.Seal(TeamKey("T1"), token)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := box.Seal(TeamKey("T1"), token)
	if bytes.Equal(a, b) {
		t.Error("two seals of one token are equal: the nonce is not fresh")
	}
	if bytes.Contains(a, []byte(token)) || bytes.Contains(a, []byte("secret")) {
		t.Error("the sealed value shows the token")
	}
	if got, err := box.Open(TeamKey("T1"), a); err != nil || got != token {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := box.Open(TeamKey("T2"), a); err == nil {
		t.Error("a token sealed for T1 opened for T2")
	}
	if _, err := box.Open(EnterpriseKey("T1"), a); err == nil {
		t.Error("a team's token opened as an organization's")
	}
	other, _ := NewBox(newKey(t))
	if _, err := other.Open(TeamKey("T1"), a); err == nil {
		t.Error("a token opened with another key")
	}
	for i := range a {
		c := bytes.Clone(a)
		c[i] ^= 1
		if _, err := box.Open(TeamKey("T1"), c); err == nil {
			t.Fatalf("a value changed at byte %d opened", i)
		}
	}
	for _, bad := range [][]byte{nil, {}, {sealVersion}, a[:len(a)-1]} {
		if _, err := box.Open(TeamKey("T1"), bad); err == nil {
			t.Errorf("Open(%x) succeeded", bad)
		}
	}
}

func TestParseKey(t *testing.T) {
	key := newKey(t)
	b64 := base64.StdEncoding.EncodeToString(key)
	if got, err := ParseKey(" " + b64 + "\n"); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("ParseKey = %x, %v", got, err)
	}
	short := base64.StdEncoding.EncodeToString(key[:16])
	for _, bad := range []string{"", "not base64!", short, b64 + b64} {
		_, err := ParseKey(bad)
		if err == nil {
			t.Errorf("ParseKey(%q) succeeded", bad)
			continue
		}
		if bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("the error shows the key: %v", err)
		}
	}
	if _, err := NewBox(key[:31]); err == nil {
		t.Error("NewBox took a 31-byte key")
	}
}

func TestScopes(t *testing.T) {
	got := ParseScopes(" chat:write,,commands ,")
	if ScopeList(got) != "chat:write,commands" {
		t.Errorf("ParseScopes = %q", got)
	}
	if r := (Record{Team: "T1", Enterprise: "E1"}); r.Key() != "team:T1" {
		t.Errorf("Key = %q", r.Key())
	}
	if r := (Record{Enterprise: "E1", EnterpriseInstall: true}); r.Key() != "enterprise:E1" {
		t.Errorf("Key = %q", r.Key())
	}
}
