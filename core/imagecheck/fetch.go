package imagecheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/easel-bot/easel/core"
)

// Defaults of the attachment limits, for Limits fields and counts left
// zero.
const (
	DefaultMaxBytes = 20 << 20 // per attachment
	DefaultMaxFiles = 10       // per message; some platforms allow no more
	maxRedirects    = 3
)

// Fetcher downloads attachments for use as input images, for the chat
// adapters: from allowed hosts only (a redirect anywhere else is refused
// before it is sent, so a credential in Header never leaves them, even on a
// hop), reading no more than the size limit (a declared size or
// Content-Length over it is refused before reading; a body that lies is cut
// at limit+1 bytes), and then checked as Check does. Its methods are safe
// for concurrent use.
type Fetcher struct {
	client  *http.Client
	cfg     FetchConfig
	limits  Limits
	offHost error // the error of a redirect off the allowed hosts
}

// FetchConfig configures a Fetcher.
type FetchConfig struct {
	// Client makes the requests; nil means http.DefaultClient. The Fetcher
	// uses a copy that polices redirects.
	Client *http.Client
	// Allowed reports whether a URL is on a host that serves the
	// platform's attachments. URLs with credentials are refused anyway.
	Allowed func(*url.URL) bool
	// Header is added to every request, such as an Authorization a private
	// file needs.
	Header http.Header
	// Limits bound the attachments of a message and each image; MaxBytes
	// 0 means DefaultMaxBytes, MaxFiles 0 DefaultMaxFiles.
	Limits Limits
	// Where names the platform in messages, as its users know it.
	Where string
	// Denied, if set, recognises a response with status 200 that is a
	// refusal all the same (a sign-in page). DeniedHint is said after any
	// refusal, such as which permission is missing.
	Denied     func(*http.Response) bool
	DeniedHint string
}

// NewFetcher returns a Fetcher for cfg.
func NewFetcher(cfg FetchConfig) *Fetcher {
	if cfg.Limits.MaxBytes <= 0 {
		cfg.Limits.MaxBytes = DefaultMaxBytes
	}
	if cfg.Limits.MaxFiles <= 0 {
		cfg.Limits.MaxFiles = DefaultMaxFiles
	}
	base := cfg.Client
	if base == nil {
		base = http.DefaultClient
	}
	f := &Fetcher{cfg: cfg, limits: cfg.Limits, offHost: errors.New("redirect off the attachment hosts refused")}
	client := *base
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !f.allowed(req.URL) {
			return f.offHost
		}
		if len(via) > maxRedirects {
			return fmt.Errorf("more than %d redirects", maxRedirects)
		}
		return nil
	}
	f.client = &client
	return f
}

// Attachment is a file attached to a message.
type Attachment struct {
	Name string // as the platform gives it; only ever shown, after DisplayName
	URL  string
	Size int64 // as declared; 0 when unknown
}

// FetchAll downloads and checks the attachments of one message, in order.
// It returns an Invalid or Unavailable *core.Error naming the first one
// that cannot be used, and no image then.
func (f *Fetcher) FetchAll(ctx context.Context, atts []Attachment) ([]core.Image, error) {
	if len(atts) > f.limits.MaxFiles {
		return nil, invalid("%d files are attached; Easel can use at most %d images per message", len(atts), f.limits.MaxFiles)
	}
	var imgs []core.Image
	for _, a := range atts {
		img, err := f.Fetch(ctx, a)
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, img)
	}
	return imgs, nil
}

// Fetch downloads and checks one attachment. See FetchAll for its errors.
func (f *Fetcher) Fetch(ctx context.Context, a Attachment) (core.Image, error) {
	name, limit := DisplayName(a.Name), f.limits.MaxBytes
	if a.Size > limit {
		return core.Image{}, tooLarge(name, a.Size, limit)
	}
	u, err := url.Parse(a.URL)
	if a.URL == "" || err != nil || !f.allowed(u) {
		return core.Image{}, f.notHosted(name)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return core.Image{}, fmt.Errorf("imagecheck: download %s: %w", name, err)
	}
	for k, v := range f.cfg.Header {
		req.Header[k] = v
	}
	resp, err := f.client.Do(req)
	if errors.Is(err, f.offHost) {
		return core.Image{}, f.notHosted(name)
	}
	if err != nil {
		return core.Image{}, unavailable(err, "Easel couldn't download %s from %s; try again", name, f.cfg.Where)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || (f.cfg.Denied != nil && f.cfg.Denied(resp)) {
		msg := fmt.Sprintf("%s would not let Easel download %s (HTTP %d)", f.cfg.Where, name, resp.StatusCode)
		if f.cfg.DeniedHint != "" {
			msg += ": " + f.cfg.DeniedHint
		}
		return core.Image{}, unavailable(nil, "%s", msg)
	}
	if resp.ContentLength > limit {
		return core.Image{}, tooLarge(name, resp.ContentLength, limit)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return core.Image{}, unavailable(err, "the download of %s broke off; try again", name)
	}
	if int64(len(data)) > limit {
		return core.Image{}, tooLarge(name, -1, limit)
	}
	return Check(name, data, f.limits)
}

// allowed reports whether u is on an allowed host, without credentials.
func (f *Fetcher) allowed(u *url.URL) bool {
	return u != nil && u.User == nil && (u.Scheme == "https" || u.Scheme == "http") && f.cfg.Allowed != nil && f.cfg.Allowed(u)
}

func (f *Fetcher) notHosted(name string) error {
	return invalid("%s is not stored on %s, so Easel won't fetch it: upload the image itself", name, f.cfg.Where)
}

func invalid(format string, args ...any) error { return core.Errorf(core.Invalid, format, args...) }

func unavailable(err error, format string, args ...any) error {
	return core.WrapError(core.Unavailable, err, format, args...)
}

// tooLarge says that an attachment of n bytes (-1 when only known to be
// over limit) is too large.
func tooLarge(name string, n, limit int64) error {
	if n < 0 {
		return invalid("%s is larger than %s, the most an attached image can be", name, size(limit))
	}
	return invalid("%s is %s; attached images can be at most %s", name, size(n), size(limit))
}
