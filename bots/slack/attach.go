package slack

import (
	"context"
	"net/http"

	slackapi "github.com/slack-go/slack"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/imagecheck"
)

// newFetcher returns the downloader of attached files: with a workspace's
// bot token, from Slack's hosts only (see Bot.trusted), within
// cfg.Attachments.
func (b *Bot) newFetcher(token string) *imagecheck.Fetcher {
	return imagecheck.NewFetcher(imagecheck.FetchConfig{
		Client:  b.cfg.HTTPClient,
		Allowed: b.trusted,
		Header:  http.Header{"Authorization": {"Bearer " + token}},
		Limits:  b.cfg.Attachments,
		Where:   "Slack",
		// Without files:read or access to the conversation, Slack answers
		// with its sign-in page.
		Denied:     func(resp *http.Response) bool { return resp.Request.URL.Query().Get("redir") != "" },
		DeniedHint: "Easel needs the files:read scope and access to the conversation",
	})
}

// attachments downloads the files attached to a message in workspace w as
// input images. It returns an Invalid or Unavailable *core.Error naming
// the first file that cannot be used.
func (b *Bot) attachments(ctx context.Context, w *workspace, files []slackapi.File) ([]core.Image, error) {
	atts := make([]imagecheck.Attachment, len(files))
	for i, f := range files {
		atts[i] = attachment(f)
	}
	return w.files.FetchAll(ctx, atts)
}

// attachment describes an attached file for the fetcher.
func attachment(f slackapi.File) imagecheck.Attachment {
	return imagecheck.Attachment{Name: either(f.Name, f.ID), URL: either(f.URLPrivateDownload, f.URLPrivate), Size: int64(f.Size)}
}
