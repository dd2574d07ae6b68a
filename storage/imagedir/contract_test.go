package imagedir

import (
	"os"
	"testing"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/storage/storetest"
)

// The image directory passes the contract every image store passes.
func TestContract(t *testing.T) {
	storetest.RunImages(t, storetest.ImageHarness{
		Open: func(t *testing.T) core.ImageStore { return openTest(t) },
		Corrupt: func(t *testing.T, s core.ImageStore, ref core.ImageRef) {
			path := s.Locate(ref)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			data[len(data)/2] ^= 0xff
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
		},
	})
}
