package e2e

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

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
// reply to the original.
func TestE2E_statusMatrix(t *testing.T) {
	t.Parallel()
	sp := startStatusPeer(t)
	aliasDir, words := aliasWords(t)
	opts := gatewayOptions{peers: []string{sp.ref.Enode()}, aliasDir: aliasDir}
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
	name := identity.NewNamer(words).Name(&bob.PublicKey)
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
	if _, err := alice.c.SendText(ctx, alice.room, "hi from Matrix"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.c.SendMessageEvent(ctx, alice.room, event.EventMessage, &event.MessageEventContent{
		MsgType: event.MsgText, Body: "> <" + ghost.String() + "> hello\n\nwelcome",
		Format: event.FormatHTML, FormattedBody: "<mx-reply><blockquote>hello</blockquote></mx-reply><b>welcome</b>",
		RelatesTo: &event.RelatesTo{InReplyTo: &event.InReplyTo{EventID: got.ID}},
	}); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"[matrix] <Alice> hi from Matrix", "[matrix] <Alice> **welcome**"} {
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
