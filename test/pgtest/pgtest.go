// Package pgtest starts a throwaway PostgreSQL 15 cluster on 127.0.0.1 for tests: one
// cluster per test binary (initdb costs about a second), started on first use, and a
// fresh database per Start call, so tests are isolated from each other.
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestX(t *testing.T) {
//		dsn := pgtest.Start(t) // "host=127.0.0.1 port=… user=postgres dbname=t_… sslmode=disable"
//		…
//	}
//
// The cluster runs from the server binaries in /usr/lib/postgresql/15/bin (PGTEST_BIN
// overrides the directory), as the postgres OS user when the tests run as root (the
// server refuses root), with fsync off: it is for tests only. If the binaries are
// missing, Start fails the test with the command that installs them; it never skips.
// Main stops the cluster and removes its directory when the tests end; if the test
// binary dies instead, the kernel sends the server SIGQUIT (immediate shutdown).
//
// It must be imported only by _test.go files.
package pgtest

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/statusgate/statusgate/test/freeport"
)

// DefaultBin is where Debian's postgresql-15 package puts the server binaries.
const DefaultBin = "/usr/lib/postgresql/15/bin"

// startTimeout bounds initdb plus server start (about 1.3 s on a warm machine).
const startTimeout = 60 * time.Second

// The cluster is process-wide state by necessity: one per test binary, shared by its
// tests and stopped by Main.
var (
	inMain  atomic.Bool
	once    sync.Once
	cluster *server
	errInit error
)

// Main runs the tests, then stops the cluster if one was started. Call it from the
// package's TestMain; the test binary exits with the tests' status.
func Main(m *testing.M) {
	inMain.Store(true)
	m.Run() // since Go 1.15 the binary exits with m.Run's code when TestMain returns
	if cluster != nil {
		cluster.stop()
	}
}

// Start returns the DSN of a new, empty database on the test binary's cluster, starting
// the cluster on first use. It fails tb (never skips) if the cluster cannot start.
func Start(tb testing.TB) string {
	tb.Helper()
	if !inMain.Load() {
		tb.Fatal("pgtest: the package's TestMain must call pgtest.Main(m), which stops the cluster")
	}
	once.Do(func() { cluster, errInit = startServer() })
	if errInit != nil {
		tb.Fatalf("pgtest: %v", errInit)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn, err := cluster.createDB(ctx)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	return dsn
}

type server struct {
	dir     string
	port    int
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the server process has exited
	logDone chan struct{} // closed when the log copier has finished
	admin   *sql.DB       // connected to the postgres database, for CREATE DATABASE
}

// startupTime is how long the cluster took to start, in nanoseconds.
var startupTime atomic.Int64

// StartupTime reports how long the cluster took to start (initdb plus server ready),
// for reports; zero until a Start has started it.
func StartupTime() time.Duration { return time.Duration(startupTime.Load()) }

func startServer() (*server, error) {
	t0 := time.Now()
	bin := os.Getenv("PGTEST_BIN")
	if bin == "" {
		bin = DefaultBin
	}
	for _, name := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(bin, name)); err != nil {
			return nil, fmt.Errorf("PostgreSQL 15 server binaries not found (%v): install them with "+
				"`apt-get update && apt-get install -y --no-install-recommends postgresql` "+
				"(Debian bookworm: PostgreSQL 15; make deps does this), or set PGTEST_BIN to the directory holding initdb and postgres", err)
		}
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("create cluster dir: %w", err)
	}
	cred, err := serverCredential(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb %s: %w\n%s", data, err, out)
	}
	// A free port may be taken between probe and bind; try a few.
	for attempt := 0; ; attempt++ {
		srv, err := runServer(bin, dir, data, cred)
		if err == nil {
			startupTime.Store(int64(time.Since(t0)))
			return srv, nil
		}
		if attempt == 2 || !errors.Is(err, errPortInUse) {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

// serverCredential returns the postgres user's credential when running as root (the
// server refuses to run as root), after handing it the cluster dir; nil otherwise.
func serverCredential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs the postgres OS user (created by the postgresql package): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, fmt.Errorf("chown cluster dir to postgres: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

var errPortInUse = errors.New("port in use")

// runServer starts the postmaster as our direct child (so the parent-death signal
// reaches it) and waits for "ready to accept connections" on its log.
func runServer(bin, dir, data string, cred *syscall.Credential) (*server, error) {
	port, err := freeport.Reserve()
	if err != nil {
		return nil, fmt.Errorf("find a free port: %w", err)
	}
	logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("server-%d.log", port)))
	if err != nil {
		return nil, fmt.Errorf("create server log: %w", err)
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("pipe server log: %w", err)
	}
	cmd.Stdout = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	srv := &server{dir: dir, port: port, cmd: cmd, exited: make(chan struct{}), logDone: make(chan struct{})}
	ready := make(chan struct{})
	var inUse atomic.Bool
	// The log copier ends at EOF, when the server exits; stop waits for it.
	go func() {
		defer close(srv.logDone)
		defer logf.Close()
		sc := bufio.NewScanner(stderr)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if strings.Contains(line, "Address already in use") {
				inUse.Store(true)
			}
			if !signalled && strings.Contains(line, "database system is ready to accept connections") {
				signalled = true
				close(ready)
			}
		}
		io.Copy(logf, stderr)
	}()
	// The waiter reaps the server; it ends when the server exits (stop or crash).
	go func() {
		<-srv.logDone // Wait closes the pipe; read it to the end first
		cmd.Wait()
		close(srv.exited)
	}()
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case <-ready:
	case <-srv.exited:
		log, _ := os.ReadFile(logf.Name())
		if inUse.Load() {
			return nil, fmt.Errorf("postgres on port %d: %w", port, errPortInUse)
		}
		return nil, fmt.Errorf("postgres exited during start: %s", log)
	case <-timer.C:
		srv.stop()
		return nil, fmt.Errorf("postgres not ready after %v (log %s)", startTimeout, logf.Name())
	}
	srv.admin, err = sql.Open("pgx", srv.dsn("postgres"))
	if err != nil {
		srv.stop()
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	return srv, nil
}

func (s *server) dsn(db string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=%s sslmode=disable", s.port, db)
}

// createDB creates a database with a random name and returns its DSN.
func (s *server) createDB(ctx context.Context) (string, error) {
	var b [8]byte
	rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	if _, err := s.admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return s.dsn(name), nil
}

// stop shuts the server down immediately (SIGQUIT, as pg_ctl -m immediate), waits for
// it and removes the cluster dir.
func (s *server) stop() {
	if s.admin != nil {
		s.admin.Close()
	}
	s.cmd.Process.Signal(syscall.SIGQUIT)
	<-s.exited
	os.RemoveAll(s.dir)
}
