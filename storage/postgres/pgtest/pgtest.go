// Package pgtest starts throwaway PostgreSQL clusters for tests: initdb and
// pg_ctl from the PostgreSQL server binaries (Debian's postgresql package),
// a data directory in a temporary directory, listening on a loopback port
// only, with trust authentication. As root, the cluster runs as the
// postgres user, which initdb requires.
//
// When the binaries are missing, Start skips the test with a message saying
// how to install them, unless EASEL_REQUIRE_POSTGRES is set (as CI sets
// it): then it fails the test.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is a running throwaway PostgreSQL server.
type Cluster struct {
	dir   string // holds the data directory and the log
	bin   string // the server binaries
	port  int
	asPG  bool // run the binaries as the postgres user
	dbs   atomic.Int64
	admin string // URL of the postgres database
}

// requireEnv makes missing binaries a failure instead of a skip.
const requireEnv = "EASEL_REQUIRE_POSTGRES"

var shared struct {
	once    sync.Once
	cluster *Cluster
	err     error
}

// Start returns the cluster shared by the tests of this process, starting
// it on first use. Call Stop from TestMain when m.Run returns.
func Start(tb testing.TB) *Cluster {
	tb.Helper()
	shared.once.Do(func() { shared.cluster, shared.err = start() })
	if shared.err != nil {
		var missing *missingError
		if errors.As(shared.err, &missing) && os.Getenv(requireEnv) == "" {
			tb.Skipf("PostgreSQL server binaries not found (%v); install them to run this test: apt-get install postgresql (Debian, Ubuntu), or set PATH to a PostgreSQL bin directory", shared.err)
		}
		tb.Fatalf("pgtest: %v", shared.err)
	}
	return shared.cluster
}

// Stop stops the shared cluster, if it was started, and removes its files.
func Stop() {
	if c := shared.cluster; c != nil {
		_ = c.run("pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "stop")
		_ = os.RemoveAll(c.dir)
	}
}

// DB creates a new, empty database in c and returns its connection URL;
// the database is dropped when the test ends.
func (c *Cluster) DB(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("easel_test_%d_%d", os.Getpid(), c.dbs.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.admin)
	if err != nil {
		tb.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, c.admin); err == nil {
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			_ = conn.Close(ctx)
		}
	})
	return c.url(name)
}

func (c *Cluster) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

// missingError says the server binaries were not found.
type missingError struct{ looked string }

func (e *missingError) Error() string { return "no initdb and pg_ctl in " + e.looked }

// start initialises and starts a cluster on a free loopback port.
func start() (*Cluster, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "easel-pg-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, bin: bin, asPG: os.Geteuid() == 0}
	if c.asPG {
		pg, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, and there is no postgres user to run the server as: %w", err)
		}
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	if err := c.run("initdb", "-D", c.data(), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"); err != nil {
		return nil, err
	}
	for range 5 { // the port may be taken between choosing and binding
		if c.port, err = freePort(); err != nil {
			return nil, err
		}
		opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s -c fsync=off -c max_connections=200", c.port, c.dir)
		err = c.run("pg_ctl", "-D", c.data(), "-l", filepath.Join(c.dir, "log"), "-o", opts, "-w", "-t", "60", "start")
		if err == nil {
			c.admin = c.url("postgres")
			return c, nil
		}
	}
	log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
	return nil, fmt.Errorf("%w\n%s", err, log)
}

// run runs one of the server binaries, as the postgres user when root.
func (c *Cluster) run(name string, args ...string) error {
	path := filepath.Join(c.bin, name)
	var cmd *exec.Cmd
	if c.asPG {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", name, err, out)
	}
	return nil
}

// findBin returns the directory of initdb and pg_ctl: on PATH, or the
// newest of Debian's /usr/lib/postgresql/*/bin.
func findBin() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), "initdb")); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", &missingError{looked: "PATH and /usr/lib/postgresql/*/bin"}
}

// version returns the major version in a /usr/lib/postgresql/N/bin path.
func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
