package storage

import (
	"context"
	"errors"
	"testing"
)

// The contract suite (TestContract) covers what every store does with a
// canceled context; opening is bbolt's own.
func TestOpenCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Open(ctx, t.TempDir(), Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Open: err = %v, want context.Canceled", err)
	}
}
