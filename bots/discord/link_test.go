package discord

import (
	"strings"
	"testing"

	"github.com/bwmarrin/discordgo"

	"github.com/easel-bot/easel/core"
)

func TestGalleryLinkButton(t *testing.T) {
	p := core.ImagePost{SessionID: "s1", Version: 2, Buttons: core.Buttons}
	links := func() []discordgo.Button {
		var found []discordgo.Button
		for _, row := range buttons(p) {
			for _, c := range row.(discordgo.ActionsRow).Components {
				if b, ok := c.(discordgo.Button); ok && b.Style == discordgo.LinkButton {
					found = append(found, b)
				}
			}
		}
		return found
	}
	if l := links(); len(l) != 0 {
		t.Errorf("link buttons without a link: %+v", l)
	}
	p.Link = "https://easel.example.com/gallery/s/s1?exp=1&sig=x"
	if l := links(); len(l) != 1 || l[0].URL != p.Link || l[0].Label != "Open in gallery" || l[0].CustomID != "" {
		t.Errorf("link buttons %+v, want one to %s", l, p.Link)
	}
	p.Link = "https://easel.example.com/" + strings.Repeat("x", maxLinkURL)
	if l := links(); len(l) != 0 {
		t.Errorf("a link over Discord's limit got a button: %+v", l)
	}
}
