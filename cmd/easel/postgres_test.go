package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/easel-bot/easel/storage/postgres/pgtest"
	"github.com/easel-bot/easel/storage/s3images/s3test"
)

// With storage.backend = "postgres", easel chat keeps its sessions in the
// database (no easel.db in the data dir, which holds only the images), and
// sessions list, sessions show and usage read them from there.
func TestChatOnPostgres(t *testing.T) {
	url := pgtest.Start(t).DB(t)
	dir := t.TempDir()
	cfg := writeFile(t, "[storage]\nbackend = \"postgres\"\ndir = \""+dir+"\"\n")
	env := map[string]string{"EASEL_POSTGRES_URL": url}

	// The reporting commands refuse a database Easel has not used yet,
	// and change nothing.
	if _, errOut, code := easel(t, "", env, "sessions", "list", "-config", cfg); code != 1 || !strings.Contains(errOut, "holds no Easel data yet") {
		t.Errorf("sessions list on an empty database: exit %d, %q", code, errOut)
	}
	out, errOut, code := easel(t, "a red fox\nmake it blue\n", env, "chat", "-config", cfg, "-provider", "preview")
	if code != 0 || len(imagePaths(out)) != 2 {
		t.Fatalf("easel chat on postgres: exit %d, %d images\n%s\n%s", code, len(imagePaths(out)), out, errOut)
	}
	if strings.Contains(out+errOut, url) || !strings.Contains(out, "data postgres database") {
		t.Errorf("the banner shows the URL, or not the database:\n%s", out)
	}
	id := sessionID(t, out)
	if _, err := os.Stat(filepath.Join(dir, "easel.db")); !os.IsNotExist(err) {
		t.Errorf("an easel.db was made in the data dir (%v); sessions belong in the database", err)
	}
	list, errOut, code := easel(t, "", env, "sessions", "list", "-config", cfg)
	if code != 0 || !strings.Contains(list, id) {
		t.Errorf("sessions list: exit %d\n%s\n%s", code, list, errOut)
	}
	show, errOut, code := easel(t, "", env, "sessions", "show", id, "-config", cfg)
	if code != 0 || !strings.Contains(show, "make it blue") || strings.Contains(show, "⚠") {
		t.Errorf("sessions show: exit %d\n%s\n%s", code, show, errOut)
	}
	usage, errOut, code := easel(t, "", env, "usage", "-config", cfg)
	if code != 0 || !strings.Contains(usage, "console/-  2       2") { // two images, two turns
		t.Errorf("usage: exit %d\n%s\n%s", code, usage, errOut)
	}
	// Without the URL, every command says what is missing.
	if _, errOut, code := easel(t, "", nil, "sessions", "list", "-config", cfg); code != 1 || !strings.Contains(errOut, "EASEL_POSTGRES_URL") {
		t.Errorf("sessions list without EASEL_POSTGRES_URL: exit %d, %q", code, errOut)
	}
}

// The scale-out stack: sessions in PostgreSQL, images in an S3 store (a real
// versitygw). easel chat stores nothing in the data dir, and sessions
// export fetches the images back from the bucket, byte for byte.
func TestChatOnPostgresAndS3(t *testing.T) {
	url := pgtest.Start(t).DB(t)
	srv := s3test.Start(t)
	dir := t.TempDir()
	cfg := writeFile(t, fmt.Sprintf("[storage]\nbackend = \"postgres\"\ndir = %q\n[images]\nbackend = \"s3\"\ns3_endpoint = %q\ns3_bucket = %q\ns3_region = %q\n",
		dir, srv.Endpoint, srv.Bucket(), srv.Region))
	env := map[string]string{"EASEL_POSTGRES_URL": url, "AWS_ACCESS_KEY_ID": srv.AccessKey, "AWS_SECRET_ACCESS_KEY": srv.SecretKey}
	out, errOut, code := easel(t, "a red fox\nmake it blue\n", env, "chat", "-config", cfg, "-provider", "preview")
	if code != 0 || strings.Count(out, "s3://") != 2 {
		t.Fatalf("easel chat on postgres and s3: exit %d\n%s\n%s", code, out, errOut)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the data dir holds %d entries; everything belongs in the database and the bucket", len(entries))
	}
	id := sessionID(t, out)
	exported := filepath.Join(t.TempDir(), "out")
	if _, errOut, code := easel(t, "", env, "sessions", "export", id, "-o", exported, "-config", cfg); code != 0 {
		t.Fatalf("export: exit %d: %s", code, errOut)
	}
	for _, name := range []string{"v1.png", "v2.png"} {
		data, err := os.ReadFile(filepath.Join(exported, name))
		if err != nil || !bytes.HasPrefix(data, []byte("\x89PNG")) {
			t.Errorf("exported %s: %d bytes, %v", name, len(data), err)
		}
	}
	for _, secret := range []string{srv.SecretKey, url} {
		if strings.Contains(out+errOut, secret) {
			t.Errorf("a secret reached the output")
		}
	}
}

// A team that outgrows one process copies its bbolt data dir into
// PostgreSQL and S3: every session (thread bindings kept), image and usage
// counter, twice without change, and the sessions carry on from there.
func TestStorageCopy(t *testing.T) {
	dir := t.TempDir()
	out, errOut, code := easel(t, "a red fox\nmake it blue\n/new\na heron\n/style set brand pastel --quality low\n/defaults --style brand\n",
		nil, "chat", "--data", dir, "-provider", "preview")
	if code != 0 {
		t.Fatalf("easel chat: exit %d\n%s", code, errOut)
	}
	before, _, _ := easel(t, "", nil, "sessions", "list", "--data", dir)
	usageBefore, _, _ := easel(t, "", nil, "usage", "--data", dir)
	stylesBefore, _, _ := easel(t, "", nil, "styles", "--data", dir)

	url := pgtest.Start(t).DB(t)
	srv := s3test.Start(t)
	cfg := writeFile(t, fmt.Sprintf("[storage]\nbackend = \"postgres\"\ndir = %q\n[images]\nbackend = \"s3\"\ns3_endpoint = %q\ns3_bucket = %q\n",
		dir, srv.Endpoint, srv.Bucket()))
	env := map[string]string{"EASEL_POSTGRES_URL": url, "AWS_ACCESS_KEY_ID": srv.AccessKey, "AWS_SECRET_ACCESS_KEY": srv.SecretKey}
	for i, want := range []string{"3 images (3 uploaded)", "3 images (0 uploaded)"} {
		copied, errOut, code := easel(t, "", env, "storage", "copy", "-config", cfg)
		if code != 0 || !strings.Contains(copied, "copied 2 sessions, "+want) || !strings.Contains(copied, "1 styles and 1 channel defaults") {
			t.Fatalf("copy #%d: exit %d\n%s\n%s", i+1, code, copied, errOut)
		}
	}
	after, errOut, code := easel(t, "", env, "sessions", "list", "-config", cfg)
	if code != 0 || after != before {
		t.Errorf("sessions list after the copy (exit %d, %s):\n%s\nbefore:\n%s", code, errOut, after, before)
	}
	if usageAfter, _, _ := easel(t, "", env, "usage", "-config", cfg); usageAfter != usageBefore {
		t.Errorf("usage after the copy:\n%s\nbefore:\n%s", usageAfter, usageBefore)
	}
	if stylesAfter, _, _ := easel(t, "", env, "styles", "-config", cfg); stylesAfter != stylesBefore || !strings.Contains(stylesAfter, "brand") {
		t.Errorf("styles after the copy:\n%s\nbefore:\n%s", stylesAfter, stylesBefore)
	}
	// The console session carries on in the copy: the heron is refined.
	id := sessionID(t, out[strings.LastIndex(out, "session "):])
	more, errOut, code := easel(t, "make it green\n", env, "chat", "-config", cfg, "-session", id, "-provider", "preview")
	if code != 0 || !strings.Contains(more, "✅ v2 (refine of v1)") {
		t.Errorf("carrying on after the copy: exit %d\n%s\n%s", code, more, errOut)
	}
}
