package slack

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/easel-bot/easel/core"
)

func TestGalleryLinkInTheNote(t *testing.T) {
	p := core.ImagePost{SessionID: "s1", Version: 2, Buttons: core.Buttons}
	without, _ := json.Marshal(buttonBlocks(p))
	if strings.Contains(string(without), "gallery") {
		t.Errorf("blocks without a link mention the gallery: %s", without)
	}
	p.Link = "https://easel.example.com/gallery/s/s1?exp=1&sig=a-b_c"
	with, _ := json.Marshal(buttonBlocks(p))
	if want := `\u003chttps://easel.example.com/gallery/s/s1?exp=1\u0026amp;sig=a-b_c|Open in gallery\u003e`; !strings.Contains(string(with), want) {
		t.Errorf("blocks with a link lack %s: %s", want, with)
	}
}
