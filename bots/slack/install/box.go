package install

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the size of a token key: AES-256.
const KeySize = 32

// sealVersion starts every sealed value, so that another scheme or key can
// be told apart later.
const sealVersion = 1

// Box seals and opens bot tokens with AES-256-GCM: a fresh random nonce per
// value, and the installation's key as additional data, so that a sealed
// token moved to another installation's record does not open. Its zero
// value is not usable; make one with NewBox.
type Box struct {
	aead cipher.AEAD
}

// ParseKey decodes a token key written in standard base64, as
// `openssl rand -base64 32` prints one. Its errors never show the key.
func ParseKey(b64 string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return nil, errors.New("install: the token key is not base64 (make one with: openssl rand -base64 32)")
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("install: the token key is %d bytes; it must be %d (make one with: openssl rand -base64 32)", len(key), KeySize)
	}
	return key, nil
}

// NewBox returns a Box sealing with key, KeySize bytes.
func NewBox(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("install: the token key is %d bytes; it must be %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("install: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("install: %w", err)
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts token for the installation named key (see Record.Key).
func (b *Box) Seal(key, token string) ([]byte, error) {
	out := make([]byte, 1+b.aead.NonceSize(), 1+b.aead.NonceSize()+len(token)+b.aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("install: nonce: %w", err)
	}
	return b.aead.Seal(out, out[1:], []byte(token), []byte(key)), nil
}

// Open decrypts a token Seal sealed for key. It fails for another key,
// another token key, or a value changed in any way.
func (b *Box) Open(key string, sealed []byte) (string, error) {
	n := b.aead.NonceSize()
	if len(sealed) < 1+n+b.aead.Overhead() || sealed[0] != sealVersion {
		return "", errors.New("install: the stored token is not one this version seals")
	}
	token, err := b.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(key))
	if err != nil {
		return "", errors.New("install: the stored token does not open with the token key for this installation (another key, or moved or changed)")
	}
	return string(token), nil
}
