package statusref

import (
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
)

const wait = 30 * time.Second

// connect dials b from a and waits for both sides' peer events.
func connect(t *testing.T, a, b *Node) {
	t.Helper()
	if err := a.AddPeer(b.Enode()); err != nil {
		t.Fatal(err)
	}
	a.WaitPeer(t, b.ID(), wait)
	b.WaitPeer(t, a.ID(), wait)
}

// next returns the next message whose text is text, failing on any other message.
func next(t *testing.T, n *Node, text string) Message {
	t.Helper()
	m := n.WaitMessage(t, wait)
	if m.Text != text {
		t.Fatalf("got message %q, want %q", m.Text, text)
	}
	return m
}

// TestReference_twoMessengers checks the reference against itself: two status-go
// Messengers in two processes, over RLPx, exchange a public and 1:1 messages, the
// harness reports author, clock, id, topic and mode, and a restart on the same
// database continues the ratchet without a new X3DH.
func TestReference_twoMessengers(t *testing.T) {
	a := Start(t, Options{})
	b := Start(t, Options{})
	connect(t, a, b)

	// Public chat: the ProtocolMessage-wrapped form with the sender's bundle.
	for _, n := range []*Node{a, b} {
		if err := n.JoinPublic("status-ref-test"); err != nil {
			t.Fatal(err)
		}
	}
	sent, err := a.Send("status-ref-test", "hello public", "")
	if err != nil {
		t.Fatal(err)
	}
	m := next(t, b, "hello public")
	if m.ID != sent.ID || m.Clock != sent.Clock || !m.From.Equal(a.PublicKey()) || m.MessageType != "PUBLIC_GROUP" {
		t.Fatalf("public message %+v, sent %+v", m, sent)
	}
	if m.Envelope.Mode != ModePublic || m.Envelope.InstallationID != a.InstallationID() || len(m.Envelope.Bundles) != 1 ||
		!m.Envelope.Bundles[0].Identity.Equal(a.PublicKey()) || m.Envelope.Topic != [4]byte(crypto.Keccak256([]byte("status-ref-test"))[:4]) {
		t.Fatalf("public envelope %+v", m.Envelope)
	}

	// 1:1: DH to an unknown key, then X3DH from the bundle it carried, then DR.
	steps := []struct {
		from, to *Node
		text     string
		mode     string
	}{
		{a, b, "one", ModeDH},
		{b, a, "two", ModeX3DH},
		{a, b, "three", ModeDR},
		{b, a, "four", ModeDR},
	}
	for _, s := range steps {
		sent, err := s.from.SendDirect(s.to.PublicKey(), s.text)
		if err != nil {
			t.Fatal(err)
		}
		m := next(t, s.to, s.text)
		if m.ID != sent.ID || m.Clock != sent.Clock || !m.From.Equal(s.from.PublicKey()) || m.MessageType != "ONE_TO_ONE" {
			t.Fatalf("%s: message %+v, sent %+v", s.text, m, sent)
		}
		if m.Envelope.Mode != s.mode || m.Envelope.InstallationID != s.from.InstallationID() || !m.Envelope.Signer.Equal(s.from.PublicKey()) {
			t.Fatalf("%s: envelope %+v, want mode %s", s.text, m.Envelope, s.mode)
		}
	}

	// Restart b on its database: the session continues (DR, no X3DH).
	b.Restart(t)
	connect(t, b, a) // the fresh process dials: a's dialer backs off from b's old address
	if _, err := a.SendDirect(b.PublicKey(), "after restart"); err != nil {
		t.Fatal(err)
	}
	if m := next(t, b, "after restart"); m.Envelope.Mode != ModeDR {
		t.Fatalf("after restart: mode %s, want dr", m.Envelope.Mode)
	}
	if _, err := b.SendDirect(a.PublicKey(), "back after restart"); err != nil {
		t.Fatal(err)
	}
	if m := next(t, a, "back after restart"); m.Envelope.Mode != ModeDR {
		t.Fatalf("back after restart: mode %s, want dr", m.Envelope.Mode)
	}
	stored, err := b.StoredMessages(ChatID(a.PublicKey()), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 6 { // one, two, three, four, after restart, back after restart
		t.Fatalf("b stored %d messages in the 1:1 chat, want 6", len(stored))
	}
}
