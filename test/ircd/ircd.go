// Package ircd runs a real IRC server (ngircd from Debian's packages) on 127.0.0.1 for
// tests: Start writes a config into a temporary directory, starts the daemon on a free
// port, waits until it accepts TCP connections and stops it in t.Cleanup. Restart
// kills it and starts it again on the same port, for reconnect tests.
//
// It must not be imported by non-test code. A missing /usr/sbin/ngircd fails the test
// (make test installs the package through test/deps.sh), it never skips silently.
package ircd

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statusgate/statusgate/test/freeport"
)

// Binary is where Debian's ngircd package installs the daemon.
const Binary = "/usr/sbin/ngircd"

// readyTimeout bounds the wait for the daemon to accept connections.
const readyTimeout = 10 * time.Second

// Options configure a server. The zero value is the throughput configuration: flood
// penalties off, no server password.
type Options struct {
	// Flood keeps ngircd's default flood penalties (about one command per second once
	// a client's budget is used), for flood-control tests. Default false: penalties
	// off (MaxPenaltyTime = 0).
	Flood bool
	// Password is the server password (PASS) every client must give; "" for none.
	Password string
}

// Server is one running ngircd. Its methods are safe for concurrent use.
type Server struct {
	t    testing.TB
	dir  string
	port int

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start starts ngircd with opts on a free port of 127.0.0.1 and registers its stop
// with t.Cleanup. It fails t if the daemon is missing or does not come up.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		t.Fatalf("ircd: %s missing: run make deps (test/deps.sh installs Debian's ngircd): %v", Binary, err)
	}
	s := &Server{t: t, dir: t.TempDir(), port: freePort(t)}
	if err := os.WriteFile(filepath.Join(s.dir, "ngircd.conf"), []byte(config(s.port, opts)), 0o600); err != nil {
		t.Fatalf("ircd: write config: %v", err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "motd"), []byte("test\n"), 0o600); err != nil {
		t.Fatalf("ircd: write motd: %v", err)
	}
	t.Cleanup(s.Stop)
	s.start()
	return s
}

// Addr returns "127.0.0.1:port".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Host returns "127.0.0.1".
func (s *Server) Host() string { return "127.0.0.1" }

// Port returns the TCP port, the same across Restart.
func (s *Server) Port() int { return s.port }

// Stop kills the daemon (SIGKILL: clients see the connection drop, as in a crash) and
// waits for it to exit. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart stops the daemon and starts it again on the same port and config.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

func (s *Server) start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	// -n: stay in the foreground; the config names no PID file and no chroot.
	cmd := exec.Command(Binary, "-n", "-f", filepath.Join(s.dir, "ngircd.conf"))
	cmd.Dir = s.dir
	out, err := os.Create(filepath.Join(s.dir, "ngircd.log"))
	if err != nil {
		s.t.Fatalf("ircd: create log: %v", err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("ircd: start %s: %v", Binary, err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(readyTimeout)
	for {
		conn, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "ngircd.log"))
			s.t.Fatalf("ircd: not accepting on %s after %s: %v\n%s", s.Addr(), readyTimeout, err, log)
		}
		// The daemon binds within ~70 ms (TEST-SERVERS.md §2); a bounded retry on a
		// listening socket is the only readiness signal ngircd gives.
		time.Sleep(10 * time.Millisecond)
	}
}

// freePort returns a port of 127.0.0.1 reserved for this test process, for ngircd.
func freePort(t testing.TB) int { return freeport.Port(t) }

// config is TEST-SERVERS.md §2's ngircd.conf.
func config(port int, opts Options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[Global]\n\tName = irc.test.local\n\tInfo = test\n\tListen = 127.0.0.1\n\tPorts = %d\n\tMotdPhrase = test\n", port)
	if opts.Password != "" {
		fmt.Fprintf(&b, "\tPassword = %s\n", opts.Password)
	}
	b.WriteString("[Limits]\n\tMaxConnectionsIP = 0\n\tMaxJoins = 0\n\tMaxNickLength = 30\n")
	if !opts.Flood {
		b.WriteString("\tMaxPenaltyTime = 0\n")
	}
	b.WriteString("[Options]\n\tDNS = no\n\tIdent = no\n\tPAM = no\n")
	return b.String()
}
