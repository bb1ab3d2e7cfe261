package e2e

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/identity"
	"github.com/statusgate/statusgate/test/ircd"
)

// TestE2E_statusIRC runs the bridge binary with a route between #status on the
// reference Status node and #status on a real ngircd: (a) a Status message reaches IRC
// as "<author> text" from the relay nick; (b) an IRC line and a /me reach Status signed
// by the IRC user's puppet key, with the nick prefix; (c) a 2 KB Status message reaches
// IRC complete, in lines that fit 512 bytes on the wire.
func TestE2E_statusIRC(t *testing.T) {
	t.Parallel()
	srv := ircd.Start(t, ircd.Options{})
	hum := startIRCHuman(t, srv, "Carol")
	sp := startStatusPeer(t)
	opts := gatewayOptions{peers: []string{sp.ref.Enode()}}
	g := newGateway(t, opts)
	writeFile(t, g.cfgPath, ircConfig(t, g, opts, srv))
	g.start(t)
	g.waitReady(t)
	g.waitPeer(t, sp)

	// (a) Status → IRC.
	bob, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	name := identity.NewNamer(nil).Name(&bob.PublicKey)
	sp.post(t, bob, encodeStatus(t, bob, "hello IRC", chat.FormatProtobuf))
	want := ircLine{"PRIVMSG", "statusgate", "<" + name + "> hello IRC"}
	if l := hum.next(t, msgTimeout, fmt.Sprintf("%q", want.text)); l != want {
		t.Fatalf("IRC saw %q, want %q", l, want)
	}

	// (b) IRC → Status, as the puppet of carol (no account on ngircd: nick and where
	// she connects from).
	puppet, err := g.secret(t).PuppetKey(identity.PuppetID{Network: ircNetwork, Account: ircNetwork, User: hum.accountless("carol")})
	if err != nil {
		t.Fatal(err)
	}
	hum.c.Cmd.Message(ircChannel, "hi from IRC")
	hum.c.Cmd.Action(ircChannel, "waves")
	for _, text := range []string{"[" + ircNetwork + "] <Carol> hi from IRC", "* Carol waves"} {
		got := sp.waitFor(t, msgTimeout, fmt.Sprintf("%q", text), func(ms []statusMsg) bool { return len(withText(ms, text)) > 0 })
		for _, m := range withText(got, text) {
			if !m.signedBy(&puppet.PublicKey) {
				t.Errorf("%q (%v) signed by %x, author %x; want Carol's puppet key %x", text, m.Format, m.Signer, m.Author,
					crypto.FromECDSAPub(&puppet.PublicKey))
			}
		}
	}

	// (c) A 2 KB Status message: split on UTF-8 boundaries, every line prefixed and at
	// most 512 bytes as others receive it (a 63-byte host), nothing lost.
	long := strings.Repeat("aé€😀", 2048/10)
	sp.post(t, bob, encodeStatus(t, bob, long, chat.FormatProtobuf))
	prefix := "<" + name + "> "
	var joined strings.Builder
	for n := 1; joined.Len() < len(long); n++ {
		l := hum.next(t, msgTimeout, fmt.Sprintf("line %d of the 2 KB message", n))
		wire := ":statusgate!~statusgate@" + strings.Repeat("h", 63) + " PRIVMSG " + ircChannel + " :" + l.text + "\r\n"
		if l.nick != "statusgate" || len(wire) > 512 || !utf8.ValidString(l.text) || !strings.HasPrefix(l.text, prefix) {
			t.Fatalf("line %d: %d bytes on the wire, from %s: %q", n, len(wire), l.nick, l.text)
		}
		joined.WriteString(strings.TrimPrefix(l.text, prefix))
		if n > 20 {
			t.Fatalf("more than 20 lines for %d bytes", len(long))
		}
	}
	if joined.String() != long {
		t.Fatalf("the 2 KB message came back different:\n%q\nwant\n%q", joined.String(), long)
	}
}

// TestE2E_statusIRCGhosts: with ghosts on, a Status user appears on IRC as a nick of
// their own (sanitised alias + "[s]"), saying the text without a "<nick>" prefix; the
// ghost's line is not relayed back into Status (no loop), and an IRC answer still
// reaches Status as the IRC user's puppet key.
func TestE2E_statusIRCGhosts(t *testing.T) {
	t.Parallel()
	srv := ircd.Start(t, ircd.Options{})
	hum := startIRCHuman(t, srv, "Erin")
	sp := startStatusPeer(t)
	opts := gatewayOptions{peers: []string{sp.ref.Enode()}}
	g := newGateway(t, opts)
	writeFile(t, g.cfgPath, ircConfig(t, g, opts, srv)+"      ghosts:\n        enabled: true\n        max: 4\n")
	g.start(t)
	g.waitReady(t)
	g.waitPeer(t, sp)

	bob, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	sp.post(t, bob, encodeStatus(t, bob, "hello from a ghost", chat.FormatProtobuf))
	l := hum.next(t, msgTimeout, "the ghost's line")
	for l.cmd != "PRIVMSG" { // the ghost's JOIN is not recorded; skip notices if any
		l = hum.next(t, msgTimeout, "the ghost's line")
	}
	if l.nick == "statusgate" || !strings.HasSuffix(l.nick, "[s]") || l.text != "hello from a ghost" {
		t.Fatalf("IRC saw %+v; want the line from bob's ghost nick, without prefix", l)
	}
	puppet, err := g.secret(t).PuppetKey(identity.PuppetID{Network: ircNetwork, Account: ircNetwork, User: hum.accountless("erin")})
	if err != nil {
		t.Fatal(err)
	}
	hum.c.Cmd.Message(ircChannel, "hi puppet")
	text := "[" + ircNetwork + "] <Erin> hi puppet"
	got := sp.waitFor(t, msgTimeout, fmt.Sprintf("%q", text), func(ms []statusMsg) bool { return len(withText(ms, text)) > 0 })
	for _, m := range withText(got, text) {
		if !m.signedBy(&puppet.PublicKey) {
			t.Errorf("%q signed by %x; want Erin's puppet key", text, m.Signer)
		}
	}
	// Nothing but the two messages went through Status: the puppet's own line on IRC
	// did not come back as a new Status message.
	for _, m := range got {
		if strings.Contains(m.Text, "hello from a puppet") && !m.signedBy(&bob.PublicKey) {
			t.Errorf("the puppet's line looped back into Status: %q", m.Text)
		}
	}
}
