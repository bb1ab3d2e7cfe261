package irc

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lrstanley/girc"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/bridges/bridgestest"
	"github.com/statusgate/statusgate/test/ircd"
)

// wait is the deadline of every wait on the server in these tests.
const wait = 10 * time.Second

const testChannel = "#status"

// line is what the human saw: command, sender nick and last parameter.
type line struct{ cmd, nick, text string }

// human is a real IRC user: a girc client (AllowFlood, acting on RPL_WELCOME, see
// TEST-SERVERS.md §2) in testChannel.
type human struct {
	c     *girc.Client
	lines chan line
}

func startHuman(t testing.TB, srv *ircd.Server, nick string) *human {
	t.Helper()
	h, _ := startHumanAs(t, srv, nick, "human")
	return h
}

// startHumanAs is startHuman with the given user name (ident); quit disconnects the
// human and waits until its client stopped (also done at the end of the test).
func startHumanAs(t testing.TB, srv *ircd.Server, nick, user string) (h *human, quit func()) {
	t.Helper()
	c := girc.New(girc.Config{Server: srv.Host(), Port: srv.Port(), Nick: nick, User: user, Name: nick, AllowFlood: true})
	h = &human{c: c, lines: make(chan line, 10000)}
	joined := make(chan struct{})
	var once sync.Once
	c.Handlers.Add(girc.RPL_WELCOME, func(c *girc.Client, _ girc.Event) { c.Cmd.Join(testChannel) })
	c.Handlers.Add(girc.JOIN, func(c *girc.Client, e girc.Event) {
		if e.Source != nil && e.Source.Name == c.GetNick() {
			once.Do(func() { close(joined) })
		}
	})
	rec := func(_ *girc.Client, e girc.Event) {
		if e.Source != nil && len(e.Params) == 2 && e.Params[0] == testChannel {
			h.lines <- line{e.Command, e.Source.Name, e.Last()}
		}
	}
	c.Handlers.Add(girc.PRIVMSG, rec)
	c.Handlers.Add(girc.NOTICE, rec)
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Connect() }()
	var stop sync.Once
	quit = func() { stop.Do(func() { c.Close(); <-done }) }
	t.Cleanup(quit)
	select {
	case <-joined:
	case <-time.After(wait):
		t.Fatalf("human %s did not join within %s", nick, wait)
	}
	return h, quit
}

// next returns the next n lines the human saw.
func (h *human) next(t testing.TB, n int) []line {
	t.Helper()
	var out []line
	timeout := time.After(wait)
	for len(out) < n {
		select {
		case l := <-h.lines:
			out = append(out, l)
		case <-timeout:
			t.Fatalf("human saw %d of %d lines within %s: %q", len(out), n, wait, out)
		}
	}
	return out
}

// quiet checks the human sees nothing more for d.
func (h *human) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case l := <-h.lines:
		t.Fatalf("unexpected line %q", l)
	case <-time.After(d):
	}
}

func testConfig(srv *ircd.Server) Config {
	return Config{
		Name: "libera", Server: srv.Addr(), Nick: "statusgate",
		Channels:  []ChannelConfig{{Name: testChannel}},
		FloodRate: 1000, FloodBurst: 1000, MaxLines: 20,
	}
}

// startConnector runs a connector for cfg in sessions, as the gateway does
// (bridgestest.Start), until the test ends, and waits for StateConnected.
func startConnector(t testing.TB, cfg Config) (*Connector, *bridgestest.Host) {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := bridgestest.NewHost(c.Name())
	h.Timeout = wait
	bridgestest.Start(t, c, h)
	h.WaitState(t, bridges.StateConnected)
	return c, h
}

func outbound(t testing.TB, c *Connector, kind bridges.Kind, name, text string, n int) bridges.Outbound {
	t.Helper()
	ch, err := c.ChannelID(testChannel)
	if err != nil {
		t.Fatal(err)
	}
	return bridges.Outbound{
		Event: bridges.Event{
			Kind:   kind,
			Origin: bridges.Origin{Network: "status", Channel: "status:chat", ID: bridges.RemoteMsgID("status:m" + strconv.Itoa(n))},
			Sender: bridges.Sender{ID: "status:0xabc", Name: name},
			Text:   text,
		},
		Channel: ch,
		Key:     "k" + strconv.Itoa(n),
	}
}

// accountless is the user ID of hum under nick on network, built here from the format
// id.go documents (a compatibility promise: puppet keys derive from it), with the ident
// and host the server gave hum.
func accountless(network, nick string, hum *human) bridges.RemoteUserID {
	where := sha256.Sum256([]byte("statusgate-irc-v1:" + hum.c.GetIdent() + "@" + strings.ToLower(hum.c.GetHost())))
	return bridges.RemoteUserID(network + ":nick/" + nick + "/" + hex.EncodeToString(where[:8]))
}
