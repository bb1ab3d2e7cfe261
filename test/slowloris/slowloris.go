// Package slowloris is the slow-client harness of the HTTP listeners' timeout tests
// (issue 15 finding 4). It opens raw TCP connections that hold a listener's socket and
// goroutine the way a slowloris attack does — idle, idle after a request, headers or a
// body dribbled a byte at a time — and waits, with a deadline, for the server to close
// them. It is for tests only: a listener under test should have its timeouts shortened
// so that the attack is cut off in well under a second.
package slowloris

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Attack is one way of holding a connection open.
type Attack int

const (
	// Idle connects and sends nothing (bounded by ReadHeaderTimeout, or ReadTimeout).
	Idle Attack = iota
	// IdleKeepAlive sends Request, reads the answer, and then keeps the connection
	// open without sending anything (bounded by IdleTimeout, or ReadTimeout; neither set
	// means never).
	IdleKeepAlive
	// DripHeader sends the first line of Request and then header bytes, one every
	// Every, never ending the headers (bounded by ReadHeaderTimeout).
	DripHeader
	// DripBody sends the headers of Request at once (they must announce a large
	// Content-Length) and then the body, one byte every Every (bounded by ReadTimeout,
	// whether or not the handler reads the body).
	DripBody
)

func (a Attack) String() string {
	switch a {
	case Idle:
		return "idle"
	case IdleKeepAlive:
		return "idle keep-alive"
	case DripHeader:
		return "header dribble"
	case DripBody:
		return "body dribble"
	}
	return "unknown attack"
}

// Options of one attack.
type Options struct {
	// Request is the raw request that IdleKeepAlive, DripHeader and DripBody send:
	// headers and the empty line, CRLF line ends, then for IdleKeepAlive the body if
	// any (DripBody dribbles the body itself).
	Request string
	// Every is the time between two dribbled bytes (default 50 ms).
	Every time.Duration
	// Within is how long the server has to close the connection (default 10 s).
	Within time.Duration
}

// Run runs attack against the listener at addr and returns how long the server took to
// close the connection, counted from the moment the attack started to hold it. It
// fails t when the connection is still open after o.Within.
func Run(t testing.TB, addr string, attack Attack, o Options) time.Duration {
	t.Helper()
	if o.Every <= 0 {
		o.Every = 50 * time.Millisecond
	}
	if o.Within <= 0 {
		o.Within = 10 * time.Second
	}
	if attack != Idle && !strings.Contains(o.Request, "\r\n\r\n") ||
		attack == DripBody && !strings.HasSuffix(o.Request, "\r\n\r\n") {
		t.Fatalf("slowloris %s: Request must hold the headers and the empty line (and, for %s, end there)", attack, DripBody)
	}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("slowloris %s: dial %s: %v", attack, addr, err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)

	if attack == IdleKeepAlive {
		if err := conn.SetDeadline(time.Now().Add(o.Within)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(conn, o.Request); err != nil {
			t.Fatalf("slowloris %s: write request: %v", attack, err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("slowloris %s: read response: %v", attack, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Close {
			t.Fatalf("slowloris %s: the server closes after the request (status %d); the attack needs a keep-alive", attack, resp.StatusCode)
		}
		if err := conn.SetDeadline(time.Time{}); err != nil {
			t.Fatal(err)
		}
	}

	start := time.Now()
	// The reader sees the server's close (EOF or a reset); whatever the server answers
	// on the way (a 401, a 408) is read and dropped.
	closed := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, br)
		closed <- err
	}()
	// Bounded by the deferred conn.Close, which also ends the reader.
	defer func() { conn.Close(); <-closed }()

	var drip []byte
	switch attack {
	case DripHeader:
		line, _, _ := strings.Cut(o.Request, "\r\n")
		if _, err := io.WriteString(conn, line+"\r\nX-Slow: "); err != nil {
			t.Fatalf("slowloris %s: write request line: %v", attack, err)
		}
		drip = []byte("a")
	case DripBody:
		if _, err := io.WriteString(conn, o.Request); err != nil {
			t.Fatalf("slowloris %s: write headers: %v", attack, err)
		}
		drip = []byte("a")
	}
	tick := time.NewTicker(o.Every)
	defer tick.Stop()
	deadline := time.NewTimer(o.Within)
	defer deadline.Stop()
	for {
		select {
		case err := <-closed:
			closed <- err // for the deferred wait
			if err != nil && !isClosed(err) {
				t.Fatalf("slowloris %s: read: %v", attack, err)
			}
			return time.Since(start)
		case <-deadline.C:
			t.Fatalf("slowloris %s against %s: connection still open after %v", attack, addr, o.Within)
			return 0
		case <-tick.C:
			if drip == nil {
				continue
			}
			// A write error means the server is gone; the reader reports it.
			_, _ = conn.Write(drip)
		}
	}
}

// isClosed reports whether err is how a read sees the peer closing: EOF, a reset.
func isClosed(err error) bool {
	var op *net.OpError
	return errors.Is(err, io.EOF) || errors.As(err, &op)
}
