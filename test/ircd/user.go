package ircd

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// User is a bare IRC client in one channel, for load: it writes PRIVMSG lines as fast
// as it is asked and hands every channel line it reads to a callback, with the time it
// was read. It is a plain buffered connection (no girc: a client library's per-event
// dispatch would cost more CPU than the relays a benchmark measures on the same cores).
// It answers PINGs; it does nothing else.
type User struct {
	conn    net.Conn
	channel string

	wmu sync.Mutex // serialises writes and guards w
	w   *bufio.Writer

	done chan struct{} // closed when the reader has returned
}

// Line is one PRIVMSG or NOTICE the user read in its channel.
type Line struct {
	Nick, Text string
	At         time.Time
}

// JoinUser connects nick to s, joins channel and returns once the server confirmed the
// join; fn is then called, from one goroutine, with each PRIVMSG and NOTICE of the
// channel until the test ends (it must not block for long: the server queues what it
// cannot write). The connection is closed in t.Cleanup.
func JoinUser(t testing.TB, s *Server, nick, channel string, fn func(Line)) *User {
	t.Helper()
	conn, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
	if err != nil {
		t.Fatalf("ircd: user %s: dial: %v", nick, err)
	}
	u := &User{conn: conn, channel: channel, w: bufio.NewWriterSize(conn, 64<<10), done: make(chan struct{})}
	joined := make(chan error, 1)
	go u.read(nick, fn, joined) // ends when the connection is closed (cleanup) or fails
	t.Cleanup(func() { conn.Close(); <-u.done })
	u.send("NICK " + nick + "\r\nUSER " + nick + " 0 * :" + nick + "\r\nJOIN " + channel + "\r\n")
	select {
	case err := <-joined:
		if err != nil {
			t.Fatalf("ircd: user %s: %v", nick, err)
		}
	case <-time.After(readyTimeout):
		t.Fatalf("ircd: user %s did not join %s within %v", nick, channel, readyTimeout)
	}
	return u
}

func (u *User) read(nick string, fn func(Line), joined chan<- error) {
	defer close(u.done)
	r := bufio.NewReaderSize(u.conn, 64<<10)
	waiting := true
	for {
		line, err := r.ReadString('\n')
		now := time.Now()
		if err != nil {
			if waiting {
				joined <- fmt.Errorf("connection ended before the join: %w", err)
			}
			return
		}
		prefix, cmd, params := parse(strings.TrimRight(line, "\r\n"))
		switch cmd {
		case "PING":
			u.send("PONG :" + last(params) + "\r\n")
		case "JOIN":
			if waiting && strings.EqualFold(sourceNick(prefix), nick) {
				waiting = false
				joined <- nil
			}
		case "433", "432", "471", "473", "474", "475":
			if waiting {
				waiting = false
				joined <- fmt.Errorf("server refused: %s", line)
			}
		case "PRIVMSG", "NOTICE":
			if len(params) == 2 && strings.EqualFold(params[0], u.channel) {
				fn(Line{Nick: sourceNick(prefix), Text: params[1], At: now})
			}
		}
	}
}

// Say writes text into the channel as one PRIVMSG (no flush: Flush, or the next Say
// past the buffer, writes it). text must be one line.
func (u *User) Say(text string) error {
	u.wmu.Lock()
	defer u.wmu.Unlock()
	_, err := u.w.WriteString("PRIVMSG " + u.channel + " :" + text + "\r\n")
	return err
}

// Flush writes what Say buffered.
func (u *User) Flush() error {
	u.wmu.Lock()
	defer u.wmu.Unlock()
	return u.w.Flush()
}

func (u *User) send(raw string) {
	u.wmu.Lock()
	defer u.wmu.Unlock()
	_, _ = u.w.WriteString(raw)
	_ = u.w.Flush() // a failed write ends the reader too
}

// parse splits an IRC line into its prefix, command and parameters (the trailing one
// without its colon).
func parse(line string) (prefix, cmd string, params []string) {
	if strings.HasPrefix(line, ":") {
		prefix, line, _ = strings.Cut(line[1:], " ")
	}
	cmd, line, _ = strings.Cut(line, " ")
	for line != "" {
		if strings.HasPrefix(line, ":") {
			params = append(params, line[1:])
			break
		}
		var p string
		p, line, _ = strings.Cut(line, " ")
		params = append(params, p)
	}
	return prefix, cmd, params
}

func sourceNick(prefix string) string {
	nick, _, _ := strings.Cut(prefix, "!")
	return nick
}

func last(params []string) string {
	if len(params) == 0 {
		return ""
	}
	return params[len(params)-1]
}
