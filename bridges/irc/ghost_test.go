package irc

import (
	"context"
	"testing"
	"time"

	"github.com/lrstanley/girc"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/test/ircd"
)

func ghostConfig(srv *ircd.Server, maxGhosts int, idle time.Duration) Config {
	cfg := testConfig(srv)
	cfg.Ghosts = GhostsConfig{Enabled: true, Max: maxGhosts, IdleTimeout: idle}
	return cfg
}

// from is outbound from the Status user id called name.
func from(t testing.TB, c *Connector, kind bridges.Kind, id bridges.RemoteUserID, name, text string, n int) bridges.Outbound {
	out := outbound(t, c, kind, name, text, n)
	out.Event.Sender.ID = id
	return out
}

func send(t testing.TB, c *Connector, out bridges.Outbound) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := c.Send(ctx, out); err != nil {
		t.Fatalf("send %q: %v", out.Event.Text, err)
	}
}

func TestGhosts_twoSenders(t *testing.T) {
	srv := ircd.Start(t, ircd.Options{})
	hum := startHuman(t, srv, "human")
	c, h := startConnector(t, ghostConfig(srv, 0, time.Hour))
	send(t, c, from(t, c, bridges.KindMessage, "status:0xa", "Alice Smith", "hello **all**", 1))
	send(t, c, from(t, c, bridges.KindMessage, "status:0xb", "bob", "hi", 2))
	send(t, c, from(t, c, bridges.KindAction, "status:0xa", "Alice Smith", "waves", 3))
	send(t, c, from(t, c, bridges.KindMessage, "status:0xb", "bob", "again", 4))
	want := []line{
		{"PRIVMSG", "AliceSmith[s]", "hello \x02all\x02"},
		{"PRIVMSG", "bob[s]", "hi"},
		{"PRIVMSG", "AliceSmith[s]", "\x01ACTION waves\x01"},
		{"PRIVMSG", "bob[s]", "again"},
	}
	for i, l := range hum.next(t, len(want)) {
		if l != want[i] {
			t.Errorf("line %d: %q, want %q", i, l, want[i])
		}
	}
	// The relay connection sees the ghosts' lines: they are the bridge's own.
	hum.c.Cmd.Message(testChannel, "done")
	evs := h.WaitEvents(t, 5)
	for i, ev := range evs {
		if human := ev.Text == "done"; ev.Sender.IsBridge == human {
			t.Errorf("event %d from %s %q: IsBridge %v", i, ev.Sender.Name, ev.Text, ev.Sender.IsBridge)
		}
	}
	if evs[len(evs)-1].Text != "done" {
		t.Errorf("last event %+v", evs[len(evs)-1])
	}
}

func TestGhosts_nickCollision(t *testing.T) {
	srv := ircd.Start(t, ircd.Options{})
	hum := startHuman(t, srv, "human")
	startHuman(t, srv, "alice[s]") // a human already holds the ghost's nick
	c, _ := startConnector(t, ghostConfig(srv, 0, time.Hour))
	send(t, c, from(t, c, bridges.KindMessage, "status:0xa", "alice", "hi", 1))
	if l := hum.next(t, 1)[0]; l != (line{"PRIVMSG", "alice[s]2", "hi"}) {
		t.Errorf("got %q, want from alice[s]2", l)
	}
}

func TestGhosts_capFallsBackToRelay(t *testing.T) {
	srv := ircd.Start(t, ircd.Options{})
	hum := startHuman(t, srv, "human")
	c, _ := startConnector(t, ghostConfig(srv, 1, time.Hour))
	send(t, c, from(t, c, bridges.KindMessage, "status:0xa", "alice", "one", 1))
	send(t, c, from(t, c, bridges.KindMessage, "status:0xb", "bob", "two", 2))
	want := []line{{"PRIVMSG", "alice[s]", "one"}, {"PRIVMSG", "statusgate", "<bob> two"}}
	for i, l := range hum.next(t, 2) {
		if l != want[i] {
			t.Errorf("line %d: %q, want %q", i, l, want[i])
		}
	}
}

func TestGhosts_idleQuitAndLazyReconnect(t *testing.T) {
	srv := ircd.Start(t, ircd.Options{})
	hum := startHuman(t, srv, "human")
	quits := make(chan string, 10)
	hum.c.Handlers.Add(girc.QUIT, func(_ *girc.Client, e girc.Event) { quits <- e.Source.Name })
	c, _ := startConnector(t, ghostConfig(srv, 0, 200*time.Millisecond))
	send(t, c, from(t, c, bridges.KindMessage, "status:0xa", "alice", "before", 1))
	if l := hum.next(t, 1)[0]; l.nick != "alice[s]" {
		t.Fatalf("got %q", l)
	}
	select {
	case nick := <-quits:
		if nick != "alice[s]" {
			t.Errorf("QUIT from %s", nick)
		}
	case <-time.After(wait):
		t.Fatal("the idle ghost did not QUIT")
	}
	send(t, c, from(t, c, bridges.KindMessage, "status:0xa", "alice", "after", 2))
	if l := hum.next(t, 1)[0]; l != (line{"PRIVMSG", "alice[s]", "after"}) {
		t.Errorf("after reconnect: %q", l)
	}
}

func TestGhostNick(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		want string
	}{
		{"alice", 0, "alice[s]"},
		{"Alice Smith", 0, "AliceSmith[s]"},
		{"alice", 2, "alice[s]2"},
		{"42 is me", 0, "_42isme[s]"},
		{"-x", 0, "_-x[s]"},
		{"😀\r\nQUIT", 0, "QUIT[s]"},
		{"😀", 0, "user[s]"},
		{"abcdefghijklmnopqrstuvwxyz0123456789", 0, "abcdefghijklmnopqrstuvwxyz0[s]"},
		{"abcdefghijklmnopqrstuvwxyz0123456789", 12, "abcdefghijklmnopqrstuvwxy[s]12"},
	} {
		got := ghostNick(tc.name, "[s]", tc.n)
		if got != tc.want || validNick(got) != nil {
			t.Errorf("ghostNick(%q, %d) = %q, want %q", tc.name, tc.n, got, tc.want)
		}
	}
}
