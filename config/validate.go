package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/easel-bot/easel/bots/slack/install"
	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/openai/responses"
)

// Validate checks every value of c and returns all the problems found, as
// *Error values joined with errors.Join, or nil. The errors name keys but
// carry no file or line: Load adds those. Secrets are not checked, so that a
// file can be checked without them; see MissingSecrets.
func (c Config) Validate() error {
	return join(c.problems())
}

// problems returns what Validate reports, table by table in Config's order.
func (c Config) problems() []*Error {
	var v validator

	if b := c.Storage.Backend; b != StorageBbolt && b != StoragePostgres {
		v.add("storage.backend", "must be %q or %q, got %q", StorageBbolt, StoragePostgres, b)
	}
	if l := time.Duration(c.Storage.Lease); l < 3*time.Second || l > 10*time.Minute {
		v.add("storage.lease", "must be between 3s and 10m, got %s", c.Storage.Lease)
	}
	v.nonEmpty("storage.dir", c.Storage.Dir)
	switch im := c.Images; im.Backend {
	case ImagesDir:
	case ImagesS3:
		if u, err := url.Parse(im.S3Endpoint); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil {
			v.add("images.s3_endpoint", "must be an http(s) URL without credentials, such as \"https://s3.amazonaws.com\", got %q", im.S3Endpoint)
		}
		if n := len(im.S3Bucket); n < 3 || n > 63 || strings.Trim(im.S3Bucket, "abcdefghijklmnopqrstuvwxyz0123456789.-") != "" {
			v.add("images.s3_bucket", "must be a bucket name: 3 to 63 lower-case letters, digits, dots and hyphens, got %q", im.S3Bucket)
		}
		v.nonEmpty("images.s3_region", im.S3Region)
	default:
		v.add("images.backend", "must be %q or %q, got %q", ImagesDir, ImagesS3, im.Backend)
	}
	v.positive("storage.open_timeout", c.Storage.OpenTimeout)

	if p := c.Provider.Default; p != "" && p != ProviderOpenAI && p != ProviderOpenAIResponses && p != ProviderPreview {
		v.add("provider.default", `must be "openai", "openai-responses", "preview" or "" (automatic), got %q`, p)
	}
	v.positive("provider.timeout", c.Provider.Timeout)

	e := c.Engine
	v.atLeast("engine.max_concurrent", e.MaxConcurrent, 1)
	v.atLeast("engine.max_per_user", e.MaxPerUser, 1)
	v.atLeast("engine.max_queue", e.MaxQueue, 1)
	v.between("engine.max_n", e.MaxN, 1, 10)
	if e.Variations < 1 || (e.MaxN >= 1 && e.Variations > e.MaxN) {
		v.add("engine.variations", "must be between 1 and engine.max_n (%d), got %d", e.MaxN, e.Variations)
	}
	v.atLeast("engine.max_prompt_chars", e.MaxPromptChars, 1)
	for i, id := range e.Admins {
		if strings.TrimSpace(id) == "" {
			v.add("engine.admins", "entry %d is empty", i+1)
		}
	}
	if g := e.StopGrace; g <= 0 || time.Duration(g) > MaxStopGrace {
		v.add("engine.stop_grace", "must be more than 0s and at most %s, got %s", Duration(MaxStopGrace), g)
	}
	if r := e.StoreRetry; r <= 0 || time.Duration(r) > MaxStoreRetry {
		v.add("engine.store_retry", "must be more than 0s and at most %s, got %s", Duration(MaxStoreRetry), r)
	}

	for _, name := range slices.Sorted(maps.Keys(c.Styles)) {
		st, key := c.Styles[name], "styles."+name
		if _, err := core.StyleName(name); err != nil || name != strings.ToLower(name) {
			v.add(key, "the name must be 1 to 32 lower-case letters, digits, - or _")
			continue
		}
		if strings.Contains(st.Prompt, "--") || strings.Contains(st.Prompt, "—") {
			v.add(key+".prompt", "must be words only; put flags in %s.flags", key)
		} else if p, err := core.ParseStyle(name, st.Spec(), core.Limits{MaxN: c.Engine.MaxN}); err != nil {
			v.add(key, "%s", err)
		} else if pr := p.Flags.Provider; pr != "" && pr != ProviderOpenAI && pr != ProviderOpenAIResponses && pr != ProviderPreview {
			v.add(key+".flags", "--provider must be %q, %q or %q, got %q", ProviderOpenAI, ProviderOpenAIResponses, ProviderPreview, pr)
		}
		if len(st.References) > 4 {
			v.add(key+".references", "at most 4 images, got %d", len(st.References))
		}
		for i, ref := range st.References {
			if strings.TrimSpace(ref) == "" {
				v.add(key+".references", "entry %d is empty", i+1)
			}
		}
	}

	at := c.Attach
	v.between("attachments.max_files", at.MaxFiles, 1, 16)
	v.between("attachments.max_size_mb", at.MaxSizeMB, 1, 50)
	v.between("attachments.max_side", at.MaxSide, 64, 32768)
	v.between("attachments.max_pixels", at.MaxPixels, 4096, 200_000_000)

	a := c.Access
	v.ids("access.workspaces", a.Workspaces)
	v.ids("access.channels", a.Channels)
	v.ids("access.users", a.Users)
	for i, r := range a.Roles {
		if _, err := strconv.ParseUint(r, 10, 64); err != nil {
			v.add("access.roles", "entry %d must be a role id (a number such as \"123456789012345678\"), got %q", i+1, r)
		}
	}

	q := c.Quota
	if q.ImagesPerUserDay < 0 {
		v.add("quota.images_per_user_day", "must be 0 (unlimited) or more, got %d", q.ImagesPerUserDay)
	}
	if s := q.SpendPerWorkspaceMonthUSD; s < 0 || math.IsNaN(s) || math.IsInf(s, 0) {
		v.add("quota.spend_per_workspace_month_usd", "must be 0 (unlimited) or more US dollars, got %v", s)
	}

	o := c.OpenAI
	v.httpURL("openai.base_url", o.BaseURL, false)
	if o.Model == "" {
		v.add("openai.model", "must not be empty")
	} else if why := retired(o.Model); why != "" {
		v.add("openai.model", "%s", why)
	}
	if o.ResponsesModel == "" {
		v.add("openai.responses_model", "must not be empty")
	} else if why := responses.ConversationModelProblem(o.ResponsesModel); why != "" {
		v.add("openai.responses_model", "%s", why)
	}
	v.positive("openai.timeout", o.Timeout)
	v.between("openai.max_retries", o.MaxRetries, 0, 10)
	v.between("openai.partial_images", o.PartialImages, 0, 3)
	v.oneOf("openai.moderation", o.Moderation, "auto", "low")
	for _, m := range slices.Sorted(maps.Keys(o.Prices)) {
		if m == "" {
			v.add(formatKey("openai", "prices", m), "the model name must not be empty")
		}
		p := o.Prices[m]
		v.price(formatKey("openai", "prices", m, "text_input"), p.TextInput)
		v.price(formatKey("openai", "prices", m, "image_input"), p.ImageInput)
		v.price(formatKey("openai", "prices", m, "output"), p.Output)
	}

	v.notNegative("preview.delay", c.Preview.Delay)

	s := c.Slack
	v.oneOf("slack.mode", s.Mode, "socket", "http")
	if host, port, err := net.SplitHostPort(s.Listen); err != nil || strings.ContainsAny(host, " \t") || !isPort(port) {
		v.add("slack.listen", `must be host:port, such as ":3000" or "127.0.0.1:3000", got %q`, s.Listen)
	}
	v.httpURL("slack.api_url", s.APIURL, true)
	if !strings.HasPrefix(s.Command, "/") || len(s.Command) < 2 || len(s.Command) > 32 || strings.ContainsAny(s.Command, " \t\r\n") {
		v.add("slack.command", `must be "/" followed by a name without spaces (at most 32 characters in all), such as "/imagine", got %q`, s.Command)
	}

	d := c.Discord
	v.httpURL("discord.api_url", d.APIURL, true)
	if d.Shards != ShardsAuto && (d.Shards < 1 || d.Shards > MaxShards) {
		v.add("discord.shards", "%s", shardsError(strconv.Itoa(int(d.Shards))))
	}
	for i, g := range d.Guilds {
		if _, err := strconv.ParseUint(g, 10, 64); err != nil {
			v.add("discord.guilds", "entry %d must be a guild id (a number such as \"123456789012345678\"), got %q", i+1, g)
		}
	}
	for i, r := range d.AdminRoles {
		if _, err := strconv.ParseUint(r, 10, 64); err != nil {
			v.add("discord.admin_roles", "entry %d must be a role id (a number such as \"123456789012345678\"), got %q", i+1, r)
		}
	}

	if w := c.Web; w.Listen != "" {
		if host, port, err := net.SplitHostPort(w.Listen); err != nil || strings.ContainsAny(host, " \t") || !isPort(port) {
			v.add("web.listen", `must be host:port, such as ":8080" or "127.0.0.1:8080", or "" for no web server, got %q`, w.Listen)
		}
	}
	if u := c.Web.PublicURL; u != "" {
		if p, err := url.Parse(u); err != nil || p.Host == "" || (p.Scheme != "http" && p.Scheme != "https") || p.User != nil || p.RawQuery != "" || p.Fragment != "" {
			v.add("web.public_url", `must be an http(s) URL without credentials, query or fragment, such as "https://easel.example.com", got %q`, u)
		}
	}

	if c.Slack.Enabled && c.Secrets.SlackClientID != "" {
		// Installing through OAuth needs the install pages served, at an
		// address Slack can send browsers back to.
		if c.Web.Listen == "" {
			v.add("web.listen", "must be set when %s is set: the Slack install pages are served on the web server", envSlackClientID)
		}
		if c.Web.PublicURL == "" {
			v.add("web.public_url", "must be set when %s is set: Slack sends the browser back to web.public_url/slack/oauth_redirect", envSlackClientID)
		}
	}
	if c.Secrets.TokenKey != "" {
		if _, err := install.ParseKey(c.Secrets.TokenKey); err != nil {
			v.add(envTokenKey, "%s", strings.TrimPrefix(err.Error(), "install: "))
		}
	}

	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "text", "json")

	return v.problems
}

// validator collects problems.
type validator struct {
	problems []*Error
}

// add records a problem with the value of key, described by format and args.
func (v *validator) add(key, format string, args ...any) {
	v.problems = append(v.problems, &Error{Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) nonEmpty(key, s string) {
	if s == "" {
		v.add(key, "must not be empty")
	}
}

// ids checks a list of platform ids: no entry may be empty or hold spaces.
func (v *validator) ids(key string, ids []string) {
	for i, id := range ids {
		switch {
		case strings.TrimSpace(id) == "":
			v.add(key, "entry %d is empty", i+1)
		case strings.IndexFunc(id, unicode.IsSpace) >= 0:
			v.add(key, "entry %d must be an id without spaces, such as \"C0123ABCD\" or \"123456789012345678\", got %q", i+1, id)
		}
	}
}

func (v *validator) atLeast(key string, n, lo int) {
	if n < lo {
		v.add(key, "must be at least %d, got %d", lo, n)
	}
}

func (v *validator) between(key string, n, lo, hi int) {
	if n < lo || n > hi {
		v.add(key, "must be between %d and %d, got %d", lo, hi, n)
	}
}

func (v *validator) positive(key string, d Duration) {
	if d <= 0 {
		v.add(key, "must be more than 0s, got %s", d)
	}
}

func (v *validator) notNegative(key string, d Duration) {
	if d < 0 {
		v.add(key, "must not be negative, got %s", d)
	}
}

// oneOf checks that s is one of allowed.
func (v *validator) oneOf(key, s string, allowed ...string) {
	if slices.Contains(allowed, s) {
		return
	}
	quoted := make([]string, len(allowed))
	for i, a := range allowed {
		quoted[i] = strconv.Quote(a)
	}
	last := len(quoted) - 1
	choices := strings.Join(quoted[:last], ", ") + " or " + quoted[last]
	if len(allowed) > 2 {
		choices = "one of " + choices
	}
	v.add(key, "must be %s, got %q", choices, s)
}

// price checks a price in dollars per million tokens.
func (v *validator) price(key string, p float64) {
	if p < 0 || math.IsNaN(p) || math.IsInf(p, 0) {
		v.add(key, "must be a price of 0 or more (US dollars per million tokens), got %v", p)
	}
}

// httpURL checks that s is an absolute http or https URL, ending with "/" if
// dirSlash is set (because paths are appended to it).
func (v *validator) httpURL(key, s string, dirSlash bool) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		// url.Parse's error quotes the whole URL, password included: keep
		// only the cause.
		msg := "not a valid URL"
		if urlErr := (*url.Error)(nil); errors.As(err, &urlErr) {
			msg += ": " + urlErr.Err.Error()
		}
		v.add(key, "%s", msg)
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		v.add(key, "must be an absolute http(s) URL, got %q", shownURL(u))
	case dirSlash && !strings.HasSuffix(u.Path, "/"):
		v.add(key, `must end with "/", got %q`, shownURL(u))
	}
}

// shownURL is u without the parts that may hold credentials: user
// information, query and fragment.
func shownURL(u *url.URL) string {
	shown := url.URL{Scheme: u.Scheme, Opaque: u.Opaque, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return shown.String()
}

// isPort reports whether s is a port number.
func isPort(s string) bool {
	_, err := strconv.ParseUint(s, 10, 16)
	return err == nil
}

// retired returns why model can no longer be used, or "" if it can.
func retired(model string) string {
	const instead = `use "gpt-image-2" (or "gpt-image-1.5", "gpt-image-1-mini")`
	switch m := strings.ToLower(model); {
	case m == "gpt-image-1":
		return fmt.Sprintf("%q was shut down on 2026-10-23; %s", model, instead)
	case strings.HasPrefix(m, "dall-e"):
		return fmt.Sprintf("%q is retired; %s", model, instead)
	}
	return ""
}
