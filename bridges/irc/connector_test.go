package irc

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/bridges/bridgestest"
	"github.com/statusgate/statusgate/test/ircd"
)

func TestRemote_toHost(t *testing.T) {
	srv := ircd.Start(t, ircd.Options{})
	hum := startHuman(t, srv, "Human")
	c, h := startConnector(t, testConfig(srv))
	_ = c
	hum.c.Cmd.Message(testChannel, "hello \x02bold\x02 \x0304red\x03 *x*")
	hum.c.Cmd.Action(testChannel, "waves")
	hum.c.Cmd.Notice(testChannel, "a \x1ditalic\x1d notice")
	evs := h.WaitEvents(t, 3)
	want := []struct {
		kind bridges.Kind
		text string
	}{
		{bridges.KindMessage, `hello **bold** red \*x\*`},
		{bridges.KindAction, "waves"},
		{bridges.KindNotice, "a *italic* notice"},
	}
	ids := map[bridges.RemoteMsgID]bool{}
	for i, w := range want {
		ev := evs[i]
		if ev.Kind != w.kind || ev.Text != w.text {
			t.Errorf("event %d: %s %q, want %s %q", i, ev.Kind, ev.Text, w.kind, w.text)
		}
		if ev.Sender.Name != "Human" || ev.Sender.ID != accountless("libera", "human", hum) || ev.Sender.IsBridge {
			t.Errorf("event %d: sender %+v", i, ev.Sender)
		}
		if ev.Origin.Channel != "libera:#status" || ids[ev.Origin.ID] {
			t.Errorf("event %d: origin %+v (duplicate ID?)", i, ev.Origin)
		}
		ids[ev.Origin.ID] = true
	}
}

func TestSend_relay(t *testing.T) {
	srv := ircd.Start(t, ircd.Options{})
	hum := startHuman(t, srv, "human")
	c, _ := startConnector(t, testConfig(srv))
	ctx := context.Background()
	r, err := c.Send(ctx, outbound(t, c, bridges.KindMessage, "alice", "hello **world** `x*y`", 1))
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != "libera:out/k1" {
		t.Errorf("receipt %q", r.ID)
	}
	if _, err := c.Send(ctx, outbound(t, c, bridges.KindAction, "alice", "waves", 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(ctx, outbound(t, c, bridges.KindNotice, "bot", "note", 3)); err != nil {
		t.Fatal(err)
	}
	got := hum.next(t, 3)
	want := []line{
		{"PRIVMSG", "statusgate", "<alice> hello \x02world\x02 x*y"},
		{"PRIVMSG", "statusgate", "\x01ACTION alice waves\x01"},
		{"NOTICE", "statusgate", "<bot> note"},
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: %q, want %q", i, got[i], want[i])
		}
	}
	if _, err := c.Send(ctx, outbound(t, c, bridges.KindEdit, "alice", "x", 4)); !bridges.IsPermanent(err) {
		t.Errorf("edit: %v, want permanent", err)
	}
	bad := outbound(t, c, bridges.KindMessage, "alice", "x", 5)
	bad.Channel = "libera:#other"
	if _, err := c.Send(ctx, bad); !errors.Is(err, ErrUnknownChannel) || !bridges.IsPermanent(err) {
		t.Errorf("unknown channel: %v", err)
	}
}

func TestSend_longAndPaste(t *testing.T) {
	srv := ircd.Start(t, ircd.Options{})
	hum := startHuman(t, srv, "human")
	cfg := testConfig(srv)
	cfg.AntiPing = true
	c, _ := startConnector(t, cfg)
	ctx := context.Background()

	// 2 KB on one line, multi-byte runes straddling every split point.
	long := strings.Repeat("aé€😀", 2048/10)
	if _, err := c.Send(ctx, outbound(t, c, bridges.KindMessage, "alice", long, 1)); err != nil {
		t.Fatal(err)
	}
	prefix := "<a\u200blice> "
	var joined strings.Builder
	n := 0
	for joined.Len() < len(long) {
		l := hum.next(t, 1)[0]
		n++
		wire := ":statusgate!~statusgate@" + strings.Repeat("h", 63) + " PRIVMSG #status :" + l.text + "\r\n"
		if len(wire) > 512 || !utf8.ValidString(l.text) || !strings.HasPrefix(l.text, prefix) {
			t.Fatalf("line %d: %d bytes on the wire, %q", n, len(wire), l.text)
		}
		joined.WriteString(strings.TrimPrefix(l.text, prefix))
	}
	if joined.String() != long || n < 5 {
		t.Fatalf("2 KB message came back different in %d lines", n)
	}

	// A 30-line paste is capped at MaxLines with a summary.
	var paste []string
	for i := 1; i <= 30; i++ {
		paste = append(paste, "line "+strconv.Itoa(i))
	}
	if _, err := c.Send(ctx, outbound(t, c, bridges.KindMessage, "alice", strings.Join(paste, "\n"), 2)); err != nil {
		t.Fatal(err)
	}
	got := hum.next(t, 20)
	for i := 0; i < 19; i++ {
		if got[i].text != prefix+paste[i] {
			t.Errorf("line %d: %q", i, got[i].text)
		}
	}
	if got[19].text != prefix+"… (11 more lines)" {
		t.Errorf("summary: %q", got[19].text)
	}
	hum.quiet(t, 100*time.Millisecond)
}

func TestSend_injection(t *testing.T) {
	srv := ircd.Start(t, ircd.Options{})
	hum := startHuman(t, srv, "human")
	c, _ := startConnector(t, testConfig(srv))
	ctx := context.Background()
	texts := []string{
		"hi\r\nQUIT :x",
		"a\x00b\rPART #status",
		"\x01ACTION pwned\x01",
		"bad \xff\xfe utf8",
		"\nJOIN #evil\n",
	}
	for i, text := range texts {
		o := outbound(t, c, bridges.KindMessage, "ev\r\nil\x00", text, i)
		if _, err := c.Send(ctx, o); err != nil {
			t.Fatalf("send %q: %v", text, err)
		}
	}
	got := hum.next(t, 7) // 2+2+1+1+1 lines: CR/LF split lines, nothing else does
	for _, l := range got {
		if l.nick != "statusgate" || l.cmd != "PRIVMSG" || !strings.HasPrefix(l.text, "<ev il\uFFFD> ") ||
			strings.ContainsAny(l.text, "\r\n\x00\x01") || !utf8.ValidString(l.text) {
			t.Errorf("harmful line %q", l)
		}
	}
	// No QUIT or PART went through: the bridge is still in the channel and relays.
	if _, err := c.Send(ctx, outbound(t, c, bridges.KindMessage, "alice", "still here", 99)); err != nil {
		t.Fatal(err)
	}
	if l := hum.next(t, 1)[0]; l.text != "<alice> still here" {
		t.Errorf("after injection: %q", l)
	}
	if u := hum.c.LookupChannel(testChannel); u == nil || !u.UserIn("statusgate") {
		t.Errorf("bridge left %s", testChannel)
	}
}

func TestSend_burst(t *testing.T) {
	srv := ircd.Start(t, ircd.Options{})
	hum := startHuman(t, srv, "human")
	c, _ := startConnector(t, testConfig(srv))
	const n = 500
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := c.Send(context.Background(), outbound(t, c, bridges.KindMessage, "alice", "m"+strconv.Itoa(i), i)); err != nil {
			t.Fatal(err)
		}
	}
	for i, l := range hum.next(t, n) {
		if l.text != "<alice> m"+strconv.Itoa(i) {
			t.Fatalf("line %d: %q", i, l.text)
		}
	}
	t.Logf("%d messages in %s", n, time.Since(start))
}

func TestSend_floodControl(t *testing.T) {
	srv := ircd.Start(t, ircd.Options{})
	hum := startHuman(t, srv, "human")
	cfg := testConfig(srv)
	cfg.FloodRate, cfg.FloodBurst = 20, 2
	c, _ := startConnector(t, cfg)
	const n = 12
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := c.Send(context.Background(), outbound(t, c, bridges.KindMessage, "alice", "m"+strconv.Itoa(i), i)); err != nil {
			t.Fatal(err)
		}
	}
	if d, min := time.Since(start), time.Duration(n-cfg.FloodBurst)*time.Second/20; d < min-10*time.Millisecond {
		t.Errorf("%d sends took %s, want ≥ %s", n, d, min)
	}
	for i, l := range hum.next(t, n) {
		if l.text != "<alice> m"+strconv.Itoa(i) {
			t.Fatalf("line %d: %q", i, l.text)
		}
	}
	// A cancelled context ends a Send waiting for the bucket.
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	c.limiter.SetBurst(0)
	if _, err := c.Send(ctx, outbound(t, c, bridges.KindMessage, "alice", "late", 99)); err == nil {
		t.Error("Send with an empty bucket and expired ctx succeeded")
	}
}

func TestRun_serverRestart(t *testing.T) {
	srv := ircd.Start(t, ircd.Options{})
	hum := startHuman(t, srv, "human")
	c, h := startConnector(t, testConfig(srv))
	ctx := context.Background()
	send := func(i int) error {
		_, err := c.Send(ctx, outbound(t, c, bridges.KindMessage, "alice", "m"+strconv.Itoa(i), i))
		return err
	}
	for i := 0; i < 10; i++ {
		if err := send(i); err != nil {
			t.Fatal(err)
		}
	}
	hum.next(t, 10)

	srv.Stop() // a crash: the connection drops
	h.WaitState(t, bridges.StateTransientDisconnect)
	if err := send(10); !errors.Is(err, bridges.ErrTransient) {
		t.Fatalf("send while down: %v, want transient", err)
	}
	srv.Restart()
	hum2 := startHuman(t, srv, "human2") // the first human lost its connection too
	// The outbox retries what failed, in order, until the bridge has rejoined: do as it does.
	for i := 10; i < 20; i++ {
		for {
			err := send(i)
			if err == nil {
				break
			}
			if !errors.Is(err, bridges.ErrTransient) {
				t.Fatalf("send %d: %v", i, err)
			}
			select {
			case <-h.Changed():
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	for i, l := range hum2.next(t, 10) {
		if l.text != "<alice> m"+strconv.Itoa(10+i) {
			t.Errorf("after restart, line %d: %q", i, l.text)
		}
	}
	hum2.quiet(t, 100*time.Millisecond)
	// And IRC → host works on the new connection, with IDs unique across connections.
	// The gap is announced first (TestRun_gapAnnounced).
	hum2.c.Cmd.Message(testChannel, "back")
	evs := h.WaitEvents(t, 2)
	if len(evs) != 2 || evs[0].Kind != bridges.KindNotice || evs[1].Text != "back" {
		t.Errorf("events after restart: %+v", evs)
	}
}

func TestRun_badCredentials(t *testing.T) {
	srv := ircd.Start(t, ircd.Options{Password: "secret"})
	cfg := testConfig(srv)
	cfg.Password = "wrong"
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := bridgestest.NewHost(c.Name())
	r := bridgestest.Start(t, c, h)
	h.WaitState(t, bridges.StateBadCredentials)
	if err := r.WaitEnded(t, 1); !errors.Is(err, bridges.ErrBadCredentials) {
		t.Errorf("the session ended with %v, want bad credentials", err)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
}

func TestNew_invalidConfig(t *testing.T) {
	ok := Config{Server: "irc.example.org:6697", Nick: "sg", Channels: []ChannelConfig{{Name: "#a"}}}
	if _, err := New(ok); err != nil {
		t.Fatal(err)
	}
	for key, mut := range map[string]func(*Config){
		"irc.name":                func(c *Config) { c.Name = "Libera" },
		"irc.server":              func(c *Config) { c.Server = "irc.example.org" },
		"irc.nick":                func(c *Config) { c.Nick = "bad nick" },
		"irc.user":                func(c *Config) { c.User = "a\r\nQUIT" },
		"irc.password":            func(c *Config) { c.Password = "x\ny" },
		"irc.channels":            func(c *Config) { c.Channels = nil },
		"irc.channels[0].name":    func(c *Config) { c.Channels[0].Name = "#a\r\nQUIT" },
		"irc.channels[1].name":    func(c *Config) { c.Channels = append(c.Channels, ChannelConfig{Name: "#A"}) },
		"irc.channels[0].key":     func(c *Config) { c.Channels[0].Key = "a b" },
		"irc.sasl":                func(c *Config) { c.SASL.User = "u" },
		"irc.max_lines":           func(c *Config) { c.MaxLines = 1 },
		"irc.flood_rate":          func(c *Config) { c.FloodRate = -1 },
		"irc.ghosts.max":          func(c *Config) { c.Ghosts.Max = -1 },
		"irc.ghosts.idle_timeout": func(c *Config) { c.Ghosts.IdleTimeout = -time.Second },
		"irc.ghosts.nick_suffix":  func(c *Config) { c.Ghosts.NickSuffix = "\r\nQUIT" },
	} {
		cfg := ok
		cfg.Channels = append([]ChannelConfig(nil), ok.Channels...)
		mut(&cfg)
		_, err := New(cfg)
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), key+":") {
			t.Errorf("%s: %v", key, err)
		}
	}
}

// TestInbound_accountlessIdentity (issue 15 finding 13) against ngircd, whose users
// have no accounts: carol speaks; after she quits, mallory connects under the nick
// "carol" (another ident) and speaks; carol comes back as "carol" from where she was
// and speaks; she changes her nick to "carol2" and speaks. mallory must not be carol
// (before the fix both were "libera:nick/carol", one Status puppet); carol back must be
// carol; carol2 is another identity (the documented price of having no account).
func TestInbound_accountlessIdentity(t *testing.T) {
	srv := ircd.Start(t, ircd.Options{})
	_, h := startConnector(t, testConfig(srv))
	say := func(hum *human, text string) bridges.Event {
		t.Helper()
		hum.c.Cmd.Message(testChannel, text)
		for {
			if ev := h.Next(t); ev.Text == text {
				return ev
			}
		}
	}
	carol, quitCarol := startHumanAs(t, srv, "carol", "carol")
	first := say(carol, "hi, carol here")
	quitCarol()
	mallory, quitMallory := startHumanAs(t, srv, "carol", "mallory")
	taken := say(mallory, "carol here, send money")
	quitMallory()
	carol, _ = startHumanAs(t, srv, "carol", "carol")
	back := say(carol, "back again")
	t.Logf("carol %s, mallory as carol %s, carol back %s", first.Sender.ID, taken.Sender.ID, back.Sender.ID)
	if want := accountless("libera", "carol", carol); back.Sender.ID != want {
		t.Errorf("carol is %s, want %s", back.Sender.ID, want)
	}
	if taken.Sender.ID == first.Sender.ID {
		t.Errorf("mallory, who took the nick carol, speaks as carol's identity %s", first.Sender.ID)
	}
	if back.Sender.ID != first.Sender.ID {
		t.Errorf("carol back from the same place is %s, was %s", back.Sender.ID, first.Sender.ID)
	}
	for _, ev := range []bridges.Event{first, taken, back} {
		if ev.Sender.Name != "carol" {
			t.Errorf("name %q, want the nick carol", ev.Sender.Name)
		}
	}
	carol.c.Cmd.Nick("carol2")
	renamed := say(carol, "new nick")
	if renamed.Sender.ID == first.Sender.ID || renamed.Sender.Name != "carol2" {
		t.Errorf("after a nick change: %+v (carol was %s)", renamed.Sender, first.Sender.ID)
	}
}
