//go:build anchor

// The smoke test needs matterbridge's binary, whose cold build takes about 105 s: it runs
// from `make bench` (go test -tags anchor), before the anchor benchmark, not in `make
// test`.

package matterbridge

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/statusgate/statusgate/test/ircd"
)

// TestRelay_ircAndAPI: matterbridge relays a line from an IRC user to its api bridge's
// websocket and an api POST to the IRC channel, each with the configured nick prefix:
// the configuration the anchor benchmark runs.
func TestRelay_ircAndAPI(t *testing.T) {
	srv := ircd.Start(t, ircd.Options{})
	mb := Start(t, Config{IRCServer: srv.Addr(), IRCChannel: "#anchor"})
	fromAPI := make(chan Message, 16)
	mb.Stream(t, func(m Message, _ time.Time) { fromAPI <- m })
	fromIRC := make(chan ircd.Line, 16)
	alice := ircd.JoinUser(t, srv, "alice", "#anchor", func(l ircd.Line) { fromIRC <- l })

	// IRC → api. matterbridge joined before it logged that it relays; alice's join may
	// still be on its way to it, which matterbridge does not need to relay her lines.
	if err := alice.Say("hello from irc"); err != nil {
		t.Fatal(err)
	}
	if err := alice.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-fromAPI:
		if m.Text != "hello from irc" || !strings.Contains(m.Username, "alice") || m.Protocol != "irc" {
			t.Fatalf("api got %+v, want alice's line from irc", m)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("api got nothing within 20 s\n%s", mb.Log())
	}

	// api → IRC.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := mb.Post(ctx, "bob", "hello from api"); err != nil {
		t.Fatal(err)
	}
	select {
	case l := <-fromIRC:
		if l.Nick != "matterbridge" || l.Text != "[api] <bob> hello from api" {
			t.Fatalf("IRC got %+v, want matterbridge's \"[api] <bob> hello from api\"", l)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("IRC got nothing within 20 s\n%s", mb.Log())
	}
}
