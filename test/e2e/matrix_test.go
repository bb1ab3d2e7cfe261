package e2e

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"maunium.net/go/mautrix/event"

	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/identity"
)

// TestE2E_statusMatrix runs the bridge binary between #status on the reference Status
// node and a portal room on a real Dendrite, set up the operator's way (`bridge
// generate-registration`, the registration loaded by the homeserver): a Status message
// appears in the portal room from the author's ghost, named with the author's alias and
// with their identicon as avatar; a Matrix user's message and a reply to the bridged
// message reach Status signed by the Matrix user's puppet key, the reply as a Status
// reply to the original; an edit (m.replace) reaches Status as a new message
// "(edited) <new text>" from the same puppet.
func TestE2E_statusMatrix(t *testing.T) {
	t.Parallel()
	sp := startStatusPeer(t)
	opts := gatewayOptions{peers: []string{sp.ref.Enode()}}
	g := newGateway(t, opts)
	hs := startMatrix(t, g, opts)
	g.start(t)
	g.waitReady(t)
	g.waitPeer(t, sp)
	alice := joinPortal(t, hs, "alice", "Alice")

	// Status → Matrix, from bob's ghost.
	bob, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	name := identity.NewNamer(nil).Name(&bob.PublicKey)
	hello := encodeStatus(t, bob, "hello *Matrix* <script>x</script>", chat.FormatProtobuf)
	helloID, err := chat.MessageID(&bob.PublicKey, hello)
	if err != nil {
		t.Fatal(err)
	}
	sp.post(t, bob, hello)
	ghost := matrixGhost("status:" + identity.ChatKey(&bob.PublicKey))
	got := alice.waitMessage(t, g, msgTimeout, "message from bob's ghost", func(ev *event.Event, m *event.MessageEventContent) bool {
		return ev.Sender == ghost && strings.Contains(m.Body, "hello")
	})
	if m := got.Content.AsMessage(); m.FormattedBody != "<p>hello <em>Matrix</em> &lt;script&gt;x&lt;/script&gt;</p>" {
		t.Errorf("formatted_body = %q", m.FormattedBody)
	}
	ctx := ctxTimeout(t, msgTimeout)
	if dn, err := alice.c.GetDisplayName(ctx, ghost); err != nil || dn.DisplayName != name {
		t.Errorf("ghost display name = %+v, %v; want the alias %q", dn, err, name)
	}
	ic, err := identity.NewIdenticon(&bob.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if mxc, err := alice.c.GetAvatarURL(ctx, ghost); err != nil || mxc.IsEmpty() {
		t.Errorf("ghost avatar_url = %q, %v; want the identicon", mxc, err)
	} else if png, err := alice.c.DownloadBytes(ctx, mxc); err != nil || !bytes.Equal(png, ic.PNG) {
		t.Errorf("ghost avatar: %d bytes (%v), want bob's %d-byte identicon", len(png), err, len(ic.PNG))
	}

	// Matrix → Status, as the puppet of @alice:localhost; the second is a reply to
	// bob's bridged message.
	puppet, err := g.secret(t).PuppetKey(identity.PuppetID{Network: matrixNetwork, Account: matrixNetwork, User: "@alice:localhost"})
	if err != nil {
		t.Fatal(err)
	}
	hi, err := alice.c.SendText(ctx, alice.room, "hi from Matrix")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.c.SendMessageEvent(ctx, alice.room, event.EventMessage, &event.MessageEventContent{
		MsgType: event.MsgText, Body: "> <" + ghost.String() + "> hello\n\nwelcome",
		Format: event.FormatHTML, FormattedBody: "<mx-reply><blockquote>hello</blockquote></mx-reply><b>welcome</b>",
		RelatesTo: &event.RelatesTo{InReplyTo: &event.InReplyTo{EventID: got.ID}},
	}); err != nil {
		t.Fatal(err)
	}
	// An edit (m.replace of the first) reaches Status as a new message, "(edited)"
	// after the nick prefix: Whisper-era Status cannot edit.
	if _, err := alice.c.SendMessageEvent(ctx, alice.room, event.EventMessage, &event.MessageEventContent{
		MsgType: event.MsgText, Body: " * hi again from Matrix",
		NewContent: &event.MessageEventContent{MsgType: event.MsgText, Body: "hi again from Matrix"},
		RelatesTo:  &event.RelatesTo{Type: event.RelReplace, EventID: hi.EventID},
	}); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"[matrix] <Alice> hi from Matrix", "[matrix] <Alice> **welcome**", "[matrix] <Alice> (edited) hi again from Matrix"} {
		got := sp.waitFor(t, msgTimeout, fmt.Sprintf("%q", text), func(ms []statusMsg) bool { return len(withText(ms, text)) > 0 })
		for _, m := range withText(got, text) {
			if !m.signedBy(&puppet.PublicKey) {
				t.Errorf("%q signed by %x; want alice's puppet key", m.Text, m.Signer)
			}
			if strings.Contains(text, "welcome") && m.ResponseTo != helloID.String() {
				t.Errorf("%q (%v) answers %q, want bob's message %s", m.Text, m.Format, m.ResponseTo, helloID)
			}
		}
	}
}

// TestE2E_statusMatrixRestart kills the bridge (SIGKILL) with the portal room set up,
// has a Matrix user send 5 messages while it is down and restarts it on the same data
// dir: Dendrite holds the transactions for the unreachable appservice and retries with
// back-off (2 s, 4 s, 8 s, ...), and each of the 5 reaches the reference Status node
// exactly once, signed by the user's puppet key: one message id per text and payload
// format (the bridge posts Transit and protobuf), no text under a second id.
func TestE2E_statusMatrixRestart(t *testing.T) {
	t.Parallel()
	sp := startStatusPeer(t)
	opts := gatewayOptions{peers: []string{sp.ref.Enode()}}
	g := newGateway(t, opts)
	hs := startMatrix(t, g, opts)
	g.start(t)
	g.waitReady(t)
	g.waitPeer(t, sp)
	alice := joinPortal(t, hs, "alice", "Alice")
	puppet, err := g.secret(t).PuppetKey(identity.PuppetID{Network: matrixNetwork, Account: matrixNetwork, User: "@alice:localhost"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxTimeout(t, restartTimeout)

	// One message across first, so the route is known to work before the crash.
	if _, err := alice.c.SendText(ctx, alice.room, "before the crash"); err != nil {
		t.Fatal(err)
	}
	sp.waitFor(t, msgTimeout, "the message before the crash", func(ms []statusMsg) bool {
		return len(withText(ms, "[matrix] <Alice> before the crash")) > 0
	})

	g.kill(t)
	start := time.Now()
	var want []string
	for i := 1; i <= 5; i++ {
		text := fmt.Sprintf("while down %d", i)
		if _, err := alice.c.SendText(ctx, alice.room, text); err != nil {
			t.Fatal(err)
		}
		want = append(want, "[matrix] <Alice> "+text)
	}
	g.start(t)
	g.waitReady(t)
	g.waitPeer(t, sp)
	got := sp.waitFor(t, restartTimeout, "the 5 messages sent while the bridge was down", func(ms []statusMsg) bool {
		for _, w := range want {
			if len(withText(ms, w)) < 2 { // both formats
				return false
			}
		}
		return true
	})
	t.Logf("5 messages sent while down arrived %v after the kill", time.Since(start).Round(time.Millisecond))

	// Anything sent twice would come within a few back-off rounds: wait for a marker
	// sent after them, then some more.
	if _, err := alice.c.SendText(ctx, alice.room, "after the restart"); err != nil {
		t.Fatal(err)
	}
	sp.waitFor(t, msgTimeout, "the message after the restart", func(ms []statusMsg) bool {
		return len(withText(ms, "[matrix] <Alice> after the restart")) >= 2
	})
	time.Sleep(3 * time.Second)
	// The bridge posts each message once per payload format (Transit and protobuf, as
	// the API test checks): exactly once is one message id per format, same clock.
	got = sp.snapshot()
	for _, w := range append(want, "[matrix] <Alice> before the crash", "[matrix] <Alice> after the restart") {
		ms := withText(got, w)
		perFormat := map[chat.Format]int{}
		for _, m := range ms {
			perFormat[m.Format]++
			if !m.signedBy(&puppet.PublicKey) {
				t.Errorf("%q signed by %x; want alice's puppet key", m.Text, m.Signer)
			}
			if m.Clock != ms[0].Clock {
				t.Errorf("%q: clocks %d and %d, want one message", w, ms[0].Clock, m.Clock)
			}
		}
		if len(ms) != 2 || perFormat[chat.FormatTransit] != 1 || perFormat[chat.FormatProtobuf] != 1 {
			t.Errorf("%q arrived under %d message ids (per format %v), want one Transit and one protobuf", w, len(ms), perFormat)
			for _, m := range ms {
				t.Errorf("  id %s clock %d format %v", m.ID, m.Clock, m.Format)
			}
		}
	}
	envelopes, repeats := sp.counts()
	t.Logf("reference node: %d envelopes, %d repeats of a known id, %d messages", envelopes, repeats, len(got))
}
