// Package testpg starts a real PostgreSQL server for tests: Debian's postgresql package,
// initdb into a new temporary directory (as an unprivileged user when the tests run as
// root, since postgres refuses to run as root), the server listening only on a Unix
// socket in that directory, stopped and removed at the end. Without PostgreSQL the test
// is skipped with a message naming the missing binary; `make test` installs it first
// (scripts/ensure-deps.sh).
package testpg

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is one running PostgreSQL.
type Server struct {
	bin     string
	dir     string // owned by the server's user
	data    string
	sock    string
	asUser  string // "" when not root
	uid     string
	gid     string
	mu      sync.Mutex
	running bool
}

// binDir finds the directory holding initdb and pg_ctl: PATH first, then Debian's
// versioned /usr/lib/postgresql/N/bin (newest first).
func binDir() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		// Debian links a version's programs into PATH one by one; the directory they
		// point into has the rest (postgres).
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		if d := filepath.Dir(p); isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "pg_ctl")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("initdb and pg_ctl not found (PATH, /usr/lib/postgresql/*/bin): install Debian's postgresql package (make test does: scripts/ensure-deps.sh)")
}

func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode()&0o111 != 0
}

// Start starts a server for the test and stops it when the test ends. It skips the test
// when PostgreSQL is not installed.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := binDir()
	if err != nil {
		t.Skipf("PostgreSQL: %v", err)
	}
	s, err := start(bin)
	if err != nil {
		t.Fatalf("PostgreSQL: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func start(bin string) (*Server, error) {
	// Not t.TempDir(): its parents are private to root, and the server's user must reach
	// its directory. The socket path must stay short (108 bytes).
	dir, err := os.MkdirTemp("", "pflash-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, dir: dir, data: filepath.Join(dir, "data"), sock: dir}
	if os.Geteuid() == 0 {
		s.asUser = "nobody"
		u, err := user.Lookup(s.asUser)
		if err != nil {
			return nil, fmt.Errorf("running as root, and no unprivileged user to run initdb as: %w", err)
		}
		s.uid, s.gid = u.Uid, u.Gid
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	if out, err := s.cmd("initdb", "-D", s.data, "-U", "pflash", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C").CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	if err := s.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// cmd runs a PostgreSQL program, as the unprivileged user when this process is root.
func (s *Server) cmd(name string, args ...string) *exec.Cmd {
	prog := filepath.Join(s.bin, name)
	if s.asUser == "" {
		return exec.Command(prog, args...)
	}
	// setpriv (util-linux) drops to the user without a login shell or PAM.
	c := exec.Command("setpriv", append([]string{"--reuid=" + s.uid, "--regid=" + s.gid, "--clear-groups", "--reset-env", prog}, args...)...)
	c.Dir = s.dir
	return c
}

// Start (re)starts the server and waits until it accepts connections.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return nil
	}
	opts := fmt.Sprintf("-k %s -c listen_addresses='' -c fsync=off -c max_connections=60", s.sock)
	out, err := s.cmd("pg_ctl", "-D", s.data, "-l", filepath.Join(s.dir, "server.log"), "-o", opts, "-w", "-t", "60", "start").CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
		return fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	s.running = true
	return nil
}

// Stop stops the server at once (fast shutdown: clients are disconnected), as a database
// going away in the middle of a bench.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return nil
	}
	out, err := s.cmd("pg_ctl", "-D", s.data, "-m", "fast", "-w", "-t", "60", "stop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %v\n%s", err, out)
	}
	s.running = false
	return nil
}

// URL is a postgres:// URL for a database on the server (created by CreateDB, or
// "postgres").
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://pflash@/%s?host=%s&sslmode=disable", db, s.sock)
}

// CreateDB creates a database and returns its URL.
func (s *Server) CreateDB(t testing.TB, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		t.Fatalf("PostgreSQL: %v\n%s", err, s.Log())
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("PostgreSQL: create database %s: %v", name, err)
	}
	return s.URL(name)
}

// Close stops the server and removes its directory.
func (s *Server) Close() {
	_ = s.Stop()
	_ = os.RemoveAll(s.dir)
}

// Log is the server's log so far, for a failing test's message.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	return strings.TrimSpace(string(b))
}
