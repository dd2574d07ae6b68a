package imagedir

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"testing"

	"github.com/easel-bot/easel/core"
)

// BenchmarkPut stores 2 MB images: new bytes each time, and bytes
// already stored.
func BenchmarkPut(b *testing.B) {
	ctx := context.Background()
	db := openTest(b)
	header := pngBytes(b, 1024, 1024, 0)[:33] // signature and IHDR: enough to sniff and size
	data := make([]byte, 2<<20)
	copy(data, header)
	_, _ = rand.Read(data[len(header):])

	b.Run("new", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		// Fresh random bytes per run: the benchmark function may run several
		// times on one data dir, and a repeat would be an "existing" write.
		_, _ = rand.Read(data[len(header):])
		n := uint64(0)
		for b.Loop() {
			n++
			binary.BigEndian.PutUint64(data[len(data)-8:], n)
			if _, err := db.Put(ctx, core.Image{Data: data}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("existing", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := db.Put(ctx, core.Image{Data: data}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
