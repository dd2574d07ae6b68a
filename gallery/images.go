package gallery

import (
	"bytes"
	"net/http"
	"slices"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/storage/imageref"
)

// imageMaxAge is how long a browser may keep an image without asking
// again: its URL names its content, so it never changes.
const imageMaxAge = "31536000" // a year, in seconds

// image serves an image of the session in the path, byte for byte as
// stored: one of its versions' images or a composited version's original,
// named by its SHA-256. Anything else, a malformed name included, is not
// found.
func (g *Gallery) image(w http.ResponseWriter, r *http.Request, _ scope) {
	id, hash := r.PathValue("id"), r.PathValue("hash")
	if !validID(id) || !imageref.IsHash(hash) {
		g.fail(w, r, http.StatusNotFound)
		return
	}
	x, err := g.store.Session(r.Context(), id)
	if err != nil {
		g.storeFailed(w, r, err)
		return
	}
	ref, ok := findImage(x, hash)
	if !ok {
		g.fail(w, r, http.StatusNotFound)
		return
	}
	img, err := g.images.Get(r.Context(), ref)
	if err != nil {
		g.storeFailed(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", mediaType(img.Data, ref.MIME))
	h.Set("Cache-Control", "private, max-age="+imageMaxAge+", immutable")
	h.Set("ETag", `"`+hash+`"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(img.Data))
}

// findImage returns the reference of the image of x with hash.
func findImage(x *core.Session, hash string) (core.ImageRef, bool) {
	for _, v := range x.Versions {
		if v.Image.SHA256 == hash {
			return v.Image, true
		}
		if v.Original != nil && v.Original.SHA256 == hash {
			return *v.Original, true
		}
	}
	return core.ImageRef{}, false
}

// imageTypes are the media types the image stores keep.
var imageTypes = []string{"image/png", "image/jpeg", "image/gif", "image/webp"}

// mediaType returns the media type of image bytes data: sniffed from them,
// else as recorded, if either is a type the image stores keep; else a type
// no browser renders.
func mediaType(data []byte, recorded string) string {
	if sniffed := http.DetectContentType(data); slices.Contains(imageTypes, sniffed) {
		return sniffed
	}
	if slices.Contains(imageTypes, recorded) {
		return recorded
	}
	return "application/octet-stream"
}
