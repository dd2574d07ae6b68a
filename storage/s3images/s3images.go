// Package s3images keeps image bytes in an S3-compatible object store
// (Amazon S3, MinIO, versitygw, SeaweedFS…) through the minio-go client,
// for several Easel processes sharing them. It implements core.ImageStore:
// each image is one object named by its content (see imageref.Key), written
// once, with its SHA-256 in the object's metadata, and checked against its
// size and hash whenever it is read.
package s3images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/easel-bot/easel/core"
	"github.com/easel-bot/easel/storage/imageref"
)

// Config says where the images are.
type Config struct {
	// Endpoint is the server's URL, such as "https://s3.amazonaws.com" or
	// "http://127.0.0.1:7070"; its scheme says whether TLS is used.
	Endpoint string
	// Bucket holds the images; it is created if missing.
	Bucket string
	// Region is the bucket's region, such as "us-east-1".
	Region string
	// AccessKey and SecretKey are the credentials (AWS_ACCESS_KEY_ID,
	// AWS_SECRET_ACCESS_KEY); never shown in an error.
	AccessKey, SecretKey string
	// ReadOnly opens for reading: the bucket is not created, and Put fails.
	ReadOnly bool
}

// Store is a bucket of images. Its methods may be called from many
// goroutines and processes.
type Store struct {
	client   *minio.Client
	bucket   string
	readOnly bool
}

// Store is an image store.
var _ core.ImageStore = (*Store)(nil)

// shaMeta is the user metadata that records an object's SHA-256.
const shaMeta = "Sha256"

// Open returns the store of cfg, creating its bucket if it does not exist.
// It returns an error naming the endpoint and bucket when the server cannot
// be reached or refuses the credentials.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("s3: endpoint %q is not an http(s) URL", cfg.Endpoint)
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: u.Scheme == "https",
		Region: cfg.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("s3: %s: %w", u.Host, err)
	}
	s := &Store{client: client, bucket: cfg.Bucket, readOnly: cfg.ReadOnly}
	exists, err := client.BucketExists(ctx, cfg.Bucket)
	if err == nil && !exists && cfg.ReadOnly {
		err = errors.New("the bucket does not exist")
	} else if err == nil && !exists {
		err = client.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region})
		if resp := minio.ToErrorResponse(err); resp.Code == "BucketAlreadyOwnedByYou" || resp.Code == "BucketAlreadyExists" {
			err = nil // made by another process meanwhile
		}
	}
	if err != nil {
		return nil, fmt.Errorf("s3: bucket %s at %s: %w", cfg.Bucket, u.Host, err)
	}
	return s, nil
}

// Put stores img's bytes under their content's name and returns their
// reference; see imageref.Describe for the Invalid *core.Error of bytes
// that are no image. Bytes already stored are read back and checked instead
// of sent again; a damaged object is replaced.
func (s *Store) Put(ctx context.Context, img core.Image) (core.ImageRef, error) {
	if s.readOnly {
		return core.ImageRef{}, fmt.Errorf("s3: bucket %s is open read-only", s.bucket)
	}
	ref, err := imageref.Describe(img)
	if err != nil {
		return core.ImageRef{}, err
	}
	key := imageref.Key(ref)
	if info, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{}); err == nil &&
		info.Size == ref.Size && info.UserMetadata[shaMeta] == ref.SHA256 {
		if _, err := s.Get(ctx, ref); err == nil {
			return ref, nil // stored whole already
		}
		// Damaged: store it again.
	}
	_, err = s.client.PutObject(ctx, s.bucket, key, bytes.NewReader(img.Data), ref.Size, minio.PutObjectOptions{
		ContentType:  ref.MIME,
		UserMetadata: map[string]string{shaMeta: ref.SHA256},
		// A known size and a single part: the object appears whole or not
		// at all, as S3 promises for one PUT.
		DisableMultipart: true,
	})
	if err != nil {
		return core.ImageRef{}, fmt.Errorf("s3: store image %s: %w", ref.SHA256, err)
	}
	return ref, nil
}

// Get returns the bytes of ref, reading no more than ref.Size+1 of the
// object. It returns a NotFound *core.Error when there is no such object,
// and an *imageref.DamagedError when the object's size or SHA-256 differs
// from ref's.
func (s *Store) Get(ctx context.Context, ref core.ImageRef) (core.Image, error) {
	key := imageref.Key(ref)
	if key == "" {
		return core.Image{}, core.Errorf(core.NotFound, "image %q not found", ref.SHA256)
	}
	obj, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return core.Image{}, fmt.Errorf("s3: read image %s: %w", ref.SHA256, err)
	}
	defer obj.Close()
	buf := bytes.NewBuffer(make([]byte, 0, ref.Size+1))
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(buf, h), io.LimitReader(obj, ref.Size+1))
	if resp := minio.ToErrorResponse(err); resp.Code == "NoSuchKey" {
		return core.Image{}, core.Errorf(core.NotFound, "image %s not found", ref.SHA256)
	}
	switch {
	case err != nil:
		return core.Image{}, fmt.Errorf("s3: read image %s: %w", ref.SHA256, err)
	case n != ref.Size:
		return core.Image{}, damaged(s.Locate(ref), fmt.Errorf("it is not the %d bytes its record says", ref.Size))
	case hex.EncodeToString(h.Sum(nil)) != ref.SHA256:
		return core.Image{}, damaged(s.Locate(ref), errors.New("its content does not match its SHA-256"))
	}
	return core.Image{Data: buf.Bytes(), MIME: ref.MIME, Name: ref.Name}, nil
}

// Remove deletes the object of ref's bytes; an object already gone is no
// error.
func (s *Store) Remove(ctx context.Context, ref core.ImageRef) error {
	key := imageref.Key(ref)
	if key == "" {
		return core.Errorf(core.Invalid, "image %q is no image reference", ref.SHA256)
	}
	err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
	if err != nil && minio.ToErrorResponse(err).Code != "NoSuchKey" {
		return fmt.Errorf("s3: remove image %s: %w", ref.SHA256, err)
	}
	return nil
}

// damaged is the error of an object that is not what its reference
// records.
func damaged(where string, why error) error { return &imageref.DamagedError{Where: where, Err: why} }

// Locate returns "s3://bucket/key" for ref, or "" when ref's hash is
// malformed.
func (s *Store) Locate(ref core.ImageRef) string {
	key := imageref.Key(ref)
	if key == "" {
		return ""
	}
	return "s3://" + s.bucket + "/" + key
}
