package storage

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/core/coretest"
	"github.com/easel-bot/easel/storage/imagedir"
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

// BenchmarkReceive records deliveries in bursts of 1 or 20 at once: alone,
// and while other goroutines update sessions without pause (as turns do
// under load), which is what a delivery's acknowledgement waits behind;
// and, last, while 1 MB images are stored as well, 20 a second, as when 20
// turns end each second. Images are synced to the same disk as the journal,
// so this last case shows what the disk makes of an fdatasync under the
// load Easel itself puts on it. It reports the 50th and 99th percentile of
// a Receive's time.
func BenchmarkReceive(b *testing.B) {
	for _, c := range []struct{ burst, writers, images int }{
		{1, 0, 0}, {1, 4, 0}, {20, 0, 0}, {20, 4, 0}, {20, 4, 20},
	} {
		name := fmt.Sprintf("burst=%d/writers=%d", c.burst, c.writers)
		if c.images > 0 {
			name += fmt.Sprintf("/images=%d/s", c.images)
		}
		b.Run(name, func(b *testing.B) { benchmarkReceive(b, c.burst, c.writers, c.images) })
	}
}

func benchmarkReceive(b *testing.B, burst, writers, imagesPerSecond int) {
	ctx := context.Background()
	clk := newClock()
	dir := b.TempDir()
	db := openTest(b, dir, clk)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		id := fmt.Sprint("s", w)
		if err := db.CreateSession(ctx, newSession(id, id)); err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := db.UpdateSession(ctx, id, queue("U1", clk.Now())); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	if imagesPerSecond > 0 {
		images, err := imagedir.Open(filepath.Join(dir, "images"), nil)
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() { storeImages(b, images, imagesPerSecond, stop) })
	}
	var mu sync.Mutex
	var took []time.Duration
	n := 0
	for b.Loop() {
		var burstWG sync.WaitGroup
		for range burst {
			n++
			key := fmt.Sprint("ev", n)
			burstWG.Go(func() {
				start := time.Now()
				if _, err := db.Receive(ctx, key, "event", []byte(`{"type":"slash_commands"}`), time.Hour); err != nil {
					b.Error(err)
				}
				d := time.Since(start)
				mu.Lock()
				took = append(took, d)
				mu.Unlock()
			})
		}
		burstWG.Wait()
	}
	close(stop)
	wg.Wait()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
}

// storeImages stores a new 1 MB PNG perSecond times a second until stop
// closes.
func storeImages(b *testing.B, images *imagedir.Dir, perSecond int, stop chan struct{}) {
	// A small PNG with a 1 MB tEXt chunk after its header, whose first
	// bytes count, so that every image is new to the content-addressed store.
	small := coretest.PNG(1)
	const header = 8 + 25 // signature, IHDR
	text := make([]byte, 1<<20)
	chunk := binary.BigEndian.AppendUint32(nil, uint32(len(text)))
	chunk = append(chunk, "tEXt"...)
	at := len(chunk)
	chunk = append(chunk, text...)
	chunk = append(chunk, 0, 0, 0, 0)
	img := slices.Concat(small[:header], chunk, small[header:])
	tick := time.NewTicker(time.Second / time.Duration(perSecond))
	defer tick.Stop()
	for n := uint64(0); ; n++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		copy(img[header+at:], fmt.Sprintf("k\x00%020d", n))
		crc := crc32.ChecksumIEEE(img[header+4 : header+len(chunk)-4])
		binary.BigEndian.PutUint32(img[header+len(chunk)-4:], crc)
		if _, err := images.Put(context.Background(), core.Image{Data: img, MIME: "image/png"}); err != nil {
			b.Error(err)
			return
		}
	}
}
