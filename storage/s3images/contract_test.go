package s3images_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/storage/s3images"
	"github.com/easel-bot/easel/storage/s3images/s3test"
	"github.com/easel-bot/easel/storage/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	s3test.Stop()
	os.Exit(code)
}

// open returns a store in a new bucket of srv.
func open(t *testing.T, srv *s3test.Server) *s3images.Store {
	t.Helper()
	s, err := s3images.Open(context.Background(), s3images.Config{Endpoint: srv.Endpoint, Bucket: srv.Bucket(), Region: srv.Region,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The S3 store, on a real S3 server, passes the contract every image store
// passes.
func TestContract(t *testing.T) {
	srv := s3test.Start(t)
	storetest.RunImages(t, storetest.ImageHarness{
		Open: func(t *testing.T) core.ImageStore { return open(t, srv) },
		Corrupt: func(t *testing.T, s core.ImageStore, ref core.ImageRef) {
			// versitygw keeps an object as a file: <dir>/<bucket>/<key>.
			path := filepath.Join(srv.Dir(), strings.TrimPrefix(s.Locate(ref), "s3://"))
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

// Wrong credentials and an unreachable server are refused at Open, naming
// the endpoint and never the secret.
func TestOpenErrors(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	_, err := s3images.Open(ctx, s3images.Config{Endpoint: srv.Endpoint, Bucket: srv.Bucket(), Region: srv.Region,
		AccessKey: srv.AccessKey, SecretKey: "wrong-secret-key-123"})
	if err == nil || strings.Contains(err.Error(), "wrong-secret-key-123") {
		t.Errorf("wrong secret: %v", err)
	}
	if _, err := s3images.Open(ctx, s3images.Config{Endpoint: "ftp://x", Bucket: "b"}); err == nil || !strings.Contains(err.Error(), "not an http(s) URL") {
		t.Errorf("bad endpoint: %v", err)
	}
}
