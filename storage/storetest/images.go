package storetest

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"sync"
	"testing"

	"github.com/easel-bot/easel/core"
)

// ImageHarness opens the image store under test.
type ImageHarness struct {
	// Open returns a new, empty image store, closed when the test ends.
	Open func(t *testing.T) core.ImageStore
	// Corrupt replaces the stored bytes of ref in s with other bytes of the
	// same size, as a disk or a careless operator might.
	Corrupt func(t *testing.T, s core.ImageStore, ref core.ImageRef)
}

// RunImages runs the contract every image store passes: content-addressed
// puts and gets, the errors of bytes that are no image, of missing and of
// damaged images, repair by a new put, and concurrent puts of the same
// bytes.
func RunImages(t *testing.T, h ImageHarness) {
	t.Run("PutGet", func(t *testing.T) {
		s := h.Open(t)
		data := testPNG(t, 7, 5, 1)
		ref, err := s.Put(ctx, core.Image{Data: data, MIME: "image/jpeg", Name: "fox.png"})
		if err != nil {
			t.Fatal(err)
		}
		if ref.MIME != "image/png" || ref.Size != int64(len(data)) || ref.Width != 7 || ref.Height != 5 || ref.Name != "fox.png" || len(ref.SHA256) != 64 {
			t.Errorf("ref = %+v; want the sniffed type, size, dimensions and name", ref)
		}
		again, err := s.Put(ctx, core.Image{Data: data, Name: "fox.png"})
		if err != nil || again != ref {
			t.Errorf("the same bytes again: %+v, %v; want the same ref", again, err)
		}
		img, err := s.Get(ctx, ref)
		if err != nil || !bytes.Equal(img.Data, data) || img.MIME != "image/png" || img.Name != "fox.png" {
			t.Errorf("Get = %d bytes %s %q, %v", len(img.Data), img.MIME, img.Name, err)
		}
		if s.Locate(ref) == "" {
			t.Error("Locate of a stored image is empty")
		}
	})
	t.Run("Errors", func(t *testing.T) {
		s := h.Open(t)
		if _, err := s.Put(ctx, core.Image{Data: []byte("<html>no image</html>"), Name: "page.png"}); core.KindOf(err) != core.Invalid {
			t.Errorf("Put of bytes that are no image: %v, want Invalid", err)
		}
		missing := core.ImageRef{SHA256: "ab" + string(bytes.Repeat([]byte("0"), 62)), MIME: "image/png", Size: 10}
		if _, err := s.Get(ctx, missing); core.KindOf(err) != core.NotFound {
			t.Errorf("Get of a missing image: %v, want NotFound", err)
		}
		for _, bad := range []string{"", "../../etc/passwd", "AB" + string(bytes.Repeat([]byte("0"), 62))} {
			if _, err := s.Get(ctx, core.ImageRef{SHA256: bad}); core.KindOf(err) != core.NotFound {
				t.Errorf("Get of hash %q: %v, want NotFound", bad, err)
			}
			if got := s.Locate(core.ImageRef{SHA256: bad}); got != "" {
				t.Errorf("Locate of hash %q = %q, want empty", bad, got)
			}
		}
	})
	t.Run("DamagedAndRepaired", func(t *testing.T) {
		s := h.Open(t)
		data := testPNG(t, 4, 4, 2)
		ref, err := s.Put(ctx, core.Image{Data: data})
		if err != nil {
			t.Fatal(err)
		}
		h.Corrupt(t, s, ref)
		if _, err := s.Get(ctx, ref); err == nil || core.KindOf(err) != core.Internal {
			t.Errorf("Get of a damaged image: %v, want an Internal error", err)
		}
		if _, err := s.Put(ctx, core.Image{Data: data}); err != nil {
			t.Fatal(err)
		}
		if img, err := s.Get(ctx, ref); err != nil || !bytes.Equal(img.Data, data) {
			t.Errorf("after storing the bytes again: %v; want the image repaired", err)
		}
	})
	t.Run("ConcurrentPuts", func(t *testing.T) {
		s := h.Open(t)
		data := testPNG(t, 16, 16, 3)
		var wg sync.WaitGroup
		refs := make([]core.ImageRef, 20)
		for i := range refs {
			wg.Go(func() {
				var err error
				if refs[i], err = s.Put(ctx, core.Image{Data: data}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		for _, r := range refs[1:] {
			if r != refs[0] {
				t.Fatalf("concurrent puts of the same bytes gave %+v and %+v", refs[0], r)
			}
		}
		if img, err := s.Get(ctx, refs[0]); err != nil || !bytes.Equal(img.Data, data) {
			t.Errorf("after concurrent puts: %v", err)
		}
	})
	t.Run("Remove", func(t *testing.T) {
		s, ok := h.Open(t).(core.ImageRemover)
		if !ok {
			t.Skip("the store cannot remove images")
		}
		store := s.(core.ImageStore)
		kept, err := store.Put(ctx, core.Image{Data: testPNG(t, 4, 4, 5)})
		if err != nil {
			t.Fatal(err)
		}
		ref, err := store.Put(ctx, core.Image{Data: testPNG(t, 4, 4, 6)})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Remove(ctx, ref); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Get(ctx, ref); core.KindOf(err) != core.NotFound {
			t.Errorf("Get after Remove: %v, want NotFound", err)
		}
		if err := s.Remove(ctx, ref); err != nil {
			t.Errorf("removing again: %v", err)
		}
		if _, err := store.Get(ctx, kept); err != nil {
			t.Errorf("another image after a Remove: %v", err)
		}
	})
}

// testPNG returns a w×h PNG whose pixels depend on seed.
func testPNG(t *testing.T, w, h int, seed byte) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(i)*31 + seed
	}
	img.Set(0, 0, color.NRGBA{seed, seed, seed, 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
