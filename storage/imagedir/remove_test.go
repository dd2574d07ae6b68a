package imagedir

import (
	"context"
	"testing"

	"github.com/easel-bot/easel/core"
)

func TestRemove(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	ref, err := db.Put(ctx, core.Image{Data: pngBytes(t, 3, 3, 1), MIME: "image/png"})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Remove(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Get(ctx, ref); core.KindOf(err) != core.NotFound {
		t.Errorf("Get after Remove: %v", err)
	}
	if err := db.Remove(ctx, ref); err != nil {
		t.Errorf("removing again: %v", err)
	}
	if err := db.Remove(ctx, core.ImageRef{SHA256: "../x"}); core.KindOf(err) != core.Invalid {
		t.Errorf("removing a malformed reference: %v", err)
	}
}
