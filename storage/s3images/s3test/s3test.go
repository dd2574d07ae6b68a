// Package s3test starts a real S3 server for tests: versitygw serving a
// temporary directory over the S3 API, on a loopback port, with throwaway
// credentials. Each test gets a bucket of its own.
//
// When the versitygw binary is missing (on PATH, or in Go's bin
// directory), Start skips the test with the command that installs it,
// unless EASEL_REQUIRE_S3 is set (as CI sets it): then it fails the test.
package s3test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Version is the versitygw release the tests are known to pass with.
const Version = "v1.8.0"

// Install is the command that installs versitygw.
const Install = "go install github.com/versity/versitygw/cmd/versitygw@" + Version

// Server is a running S3 server.
type Server struct {
	Endpoint             string // http://127.0.0.1:port
	AccessKey, SecretKey string
	Region               string

	dir     string
	cmd     *exec.Cmd
	buckets atomic.Int64
}

const requireEnv = "EASEL_REQUIRE_S3"

var shared struct {
	once   sync.Once
	server *Server
	err    error
}

// Start returns the server shared by the tests of this process, starting
// it on first use. Call Stop from TestMain when m.Run returns.
func Start(tb testing.TB) *Server {
	tb.Helper()
	shared.once.Do(func() { shared.server, shared.err = start() })
	if shared.err != nil {
		if errors.Is(shared.err, exec.ErrNotFound) && os.Getenv(requireEnv) == "" {
			tb.Skipf("versitygw not found; install it to run this test: %s", Install)
		}
		tb.Fatalf("s3test: %v", shared.err)
	}
	return shared.server
}

// Stop stops the shared server, if it was started, and removes its files.
func Stop() {
	if s := shared.server; s != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		_ = os.RemoveAll(s.dir)
	}
}

// Bucket returns a bucket name no other test of this process uses; the
// store under test creates it.
func (s *Server) Bucket() string {
	return fmt.Sprintf("easel-test-%d-%d", os.Getpid(), s.buckets.Add(1))
}

// Dir returns the directory the server keeps buckets in: <dir>/<bucket>/<key>.
func (s *Server) Dir() string { return filepath.Join(s.dir, "data") }

func start() (*Server, error) {
	bin, err := find()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "easel-s3-")
	if err != nil {
		return nil, err
	}
	s := &Server{AccessKey: "easeltestaccess", SecretKey: "easeltestsecret0123456789", Region: "us-east-1", dir: dir}
	if err := os.Mkdir(s.Dir(), 0o700); err != nil {
		return nil, err
	}
	for range 5 { // the port may be taken between choosing and binding
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		s.cmd = exec.Command(bin, "--port", addr, "--access", s.AccessKey, "--secret", s.SecretKey,
			"--region", s.Region, "--quiet", "posix", s.Dir())
		log, err := os.Create(filepath.Join(dir, "log"))
		if err != nil {
			return nil, err
		}
		s.cmd.Stdout, s.cmd.Stderr = log, log
		if err := s.cmd.Start(); err != nil {
			return nil, err
		}
		s.Endpoint = "http://" + addr
		if err := s.waitUp(); err == nil {
			return s, nil
		}
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
	out, _ := os.ReadFile(filepath.Join(dir, "log"))
	return nil, fmt.Errorf("versitygw did not start:\n%s", out)
}

// waitUp waits until the server answers HTTP.
func (s *Server) waitUp() error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(s.Endpoint); err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("no answer")
}

// find returns the versitygw binary: on PATH, or in Go's bin directory.
func find() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	gobin := os.Getenv("GOBIN")
	if gobin == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gobin = filepath.Join(string(trimNL(out)), "bin")
		}
	}
	p := filepath.Join(gobin, "versitygw")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("versitygw: %w", exec.ErrNotFound)
	}
	return p, nil
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
