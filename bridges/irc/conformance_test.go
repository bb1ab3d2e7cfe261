package irc

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/bridges/bridgestest"
	"github.com/statusgate/statusgate/test/ircd"
)

// TestConformance runs the bridges contract suite against a real ngircd, with a human
// IRC user in the channel.
func TestConformance(t *testing.T) {
	srv := ircd.Start(t, ircd.Options{})
	w := newWitness(t, srv)
	bridgestest.TestConnector(t, bridgestest.Harness{
		New: func(t *testing.T) bridges.Connector {
			c, err := New(testConfig(srv))
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		Channel: "libera:" + testChannel,
		Post:    func(t *testing.T, text string) { w.say(t, text) },
		Seen:    w.seen,
		Outage: func(t *testing.T) func() {
			srv.Stop()
			return func() {
				srv.Restart()
				w.rejoin(t)
			}
		},
		Goroutines: []string{"github.com/statusgate/statusgate/bridges/irc.", "github.com/lrstanley/girc."},
	})
}

// witness is a human IRC user in testChannel who remembers every line said there. It
// speaks raw IRC over its own TCP connection (not girc), so that none of its
// goroutines looks like the connector's.
type witness struct {
	srv     *ircd.Server
	cleanup func(func()) // the whole test's: a connection outlives the check that made it

	mu      sync.Mutex
	conn    net.Conn
	lines   []string
	changed chan struct{}
}

func newWitness(t *testing.T, srv *ircd.Server) *witness {
	w := &witness{srv: srv, cleanup: t.Cleanup, changed: make(chan struct{})}
	w.rejoin(t)
	return w
}

// rejoin connects the witness (again, after a server restart) and waits until it is in
// testChannel.
func (w *witness) rejoin(t *testing.T) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", w.srv.Addr(), wait)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "NICK witness\r\nUSER witness 0 * :witness\r\n")
	joined := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.readLoop(conn, joined)
	}()
	w.cleanup(func() { conn.Close(); <-done })
	select {
	case <-joined:
	case <-time.After(wait):
		t.Fatal("witness did not join")
	}
	w.mu.Lock()
	w.conn = conn
	w.mu.Unlock()
}

func (w *witness) readLoop(conn net.Conn, joined chan struct{}) {
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 4)
		switch {
		case f[0] == "PING":
			fmt.Fprintf(conn, "PONG %s\r\n", strings.Join(f[1:], " "))
		case len(f) >= 2 && f[1] == "001":
			fmt.Fprintf(conn, "JOIN %s\r\n", testChannel)
		case len(f) >= 3 && f[1] == "JOIN" && strings.HasPrefix(f[0], ":witness!"):
			close(joined)
		case len(f) == 4 && f[1] == "PRIVMSG" && f[2] == testChannel:
			w.mu.Lock()
			w.lines = append(w.lines, strings.TrimPrefix(f[3], ":"))
			close(w.changed)
			w.changed = make(chan struct{})
			w.mu.Unlock()
		}
	}
}

func (w *witness) say(t *testing.T, text string) {
	w.mu.Lock()
	conn := w.conn
	w.mu.Unlock()
	if _, err := fmt.Fprintf(conn, "PRIVMSG %s :%s\r\n", testChannel, text); err != nil {
		t.Fatal(err)
	}
}

func (w *witness) seen(t *testing.T, text string) []string {
	t.Helper()
	timeout := time.After(wait)
	for {
		w.mu.Lock()
		lines, changed := append([]string(nil), w.lines...), w.changed
		w.mu.Unlock()
		for _, l := range lines {
			if strings.Contains(l, text) {
				return lines
			}
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("witness did not see %q within %s", text, wait)
		}
	}
}
