package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lrstanley/girc"

	"github.com/statusgate/statusgate/test/ircd"
)

// ircNetwork and ircChannel are the IRC side of the IRC tests' route.
const (
	ircNetwork = "libera"
	ircChannel = "#status"
)

// ircConfig is the gateway's generated configuration (gateway.config) with the IRC
// channel added to the route and connectors.irc naming srv: flood control loose
// enough not to slow the tests, max_lines high enough for a 2 KB message.
func ircConfig(t *testing.T, g *gateway, opts gatewayOptions, srv *ircd.Server) string {
	t.Helper()
	base := g.config(freeAddr(t), opts)
	route := "        - channel: \"api:status\"\n"
	if !strings.Contains(base, route) {
		t.Fatalf("generated config has no %q:\n%s", route, base)
	}
	base = strings.Replace(base, route, route+"        - channel: "+strconv.Quote(ircNetwork+":"+ircChannel)+"\n", 1)
	return base + "  irc:\n" +
		"    - name: " + ircNetwork + "\n" +
		"      server: " + strconv.Quote(srv.Addr()) + "\n" +
		"      nick: statusgate\n" +
		"      channels:\n        - name: " + strconv.Quote(ircChannel) + "\n" +
		"      flood_rate: 100\n      flood_burst: 100\n      max_lines: 20\n"
}

// ircLine is one channel line an IRC user saw.
type ircLine struct{ cmd, nick, text string }

// ircHuman is a real IRC user in ircChannel: a girc client (AllowFlood; it joins on
// RPL_WELCOME, not CONNECTED) that records the channel's PRIVMSGs and NOTICEs.
type ircHuman struct {
	c     *girc.Client
	lines chan ircLine
}

func startIRCHuman(t *testing.T, srv *ircd.Server, nick string) *ircHuman {
	t.Helper()
	c := girc.New(girc.Config{Server: srv.Host(), Port: srv.Port(), Nick: nick, User: nick, Name: nick, AllowFlood: true})
	h := &ircHuman{c: c, lines: make(chan ircLine, 1000)}
	joined := make(chan struct{})
	var once sync.Once
	c.Handlers.Add(girc.RPL_WELCOME, func(c *girc.Client, _ girc.Event) { c.Cmd.Join(ircChannel) })
	c.Handlers.Add(girc.JOIN, func(c *girc.Client, e girc.Event) {
		if e.Source != nil && e.Source.Name == c.GetNick() {
			once.Do(func() { close(joined) })
		}
	})
	rec := func(_ *girc.Client, e girc.Event) {
		if e.Source != nil && len(e.Params) == 2 && e.Params[0] == ircChannel {
			select {
			case h.lines <- ircLine{e.Command, e.Source.Name, e.Last()}:
			default: // more than the test reads: it fails on what it misses
			}
		}
	}
	c.Handlers.Add(girc.PRIVMSG, rec)
	c.Handlers.Add(girc.NOTICE, rec)
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Connect() }() // ends with c.Close in cleanup
	t.Cleanup(func() { c.Close(); <-done })
	select {
	case <-joined:
	case <-time.After(10 * time.Second):
		t.Fatalf("IRC user %s did not join %s", nick, ircChannel)
	}
	return h
}

// next returns the next line the human sees, failing t after timeout.
func (h *ircHuman) next(t *testing.T, timeout time.Duration, what string) ircLine {
	t.Helper()
	select {
	case l := <-h.lines:
		return l
	case <-time.After(timeout):
		t.Fatalf("IRC user saw no line within %v, waiting for %s", timeout, what)
		return ircLine{}
	}
}

// accountless is the puppet user of h under nick (lowercase) on a server without
// accounts, built from the format bridges/irc/id.go documents (a compatibility
// promise: puppet keys derive from it): the nick and 16 hex digits of SHA-256 of
// "statusgate-irc-v1:" ident "@" host, as the server gave them to h.
func (h *ircHuman) accountless(nick string) string {
	where := sha256.Sum256([]byte("statusgate-irc-v1:" + h.c.GetIdent() + "@" + strings.ToLower(h.c.GetHost())))
	return "nick/" + nick + "/" + hex.EncodeToString(where[:8])
}
