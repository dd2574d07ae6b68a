package storage

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/easel-bot/easel/core"
)

// BenchmarkUpdateSession replaces the last turn of a session with 20 done
// turns by a queued one with a new attempt count: a load, a store of about
// 20 turns and a job record, and a commit.
func BenchmarkUpdateSession(b *testing.B) {
	ctx := context.Background()
	clk := newClock()
	db := openTest(b, b.TempDir(), clk)
	s := newSession("s1", "a")
	for i := range 20 {
		_ = queue("U1", clk.Now())(s)
		_ = finish(i+1, 1, 0.04, clk.Now())(s)
		s.Turns[i].Text = fmt.Sprintf("refinement %d: make the title gold and add a second person on the left", i)
		s.Versions[i].Image = core.ImageRef{SHA256: fmt.Sprintf("%064x", i), MIME: "image/png", Size: 1 << 20, Width: 1024, Height: 1024}
	}
	if err := db.CreateSession(ctx, s); err != nil {
		b.Fatal(err)
	}
	attempt := 0
	for b.Loop() {
		attempt++
		_, err := db.UpdateSession(ctx, "s1", func(s *core.Session) error {
			s.Turns = s.Turns[:20]
			if err := queue("U2", clk.Now())(s); err != nil {
				return err
			}
			s.Turns[20].Attempts = attempt
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutImage stores 2 MB images: new bytes each time, and bytes
// already stored.
func BenchmarkPutImage(b *testing.B) {
	ctx := context.Background()
	db := openTest(b, b.TempDir(), newClock())
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
			if _, err := db.PutImage(ctx, core.Image{Data: data}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("existing", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := db.PutImage(ctx, core.Image{Data: data}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
