package statusref

import (
	"context"
	"fmt"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/core/status"
	"github.com/statusgate/statusgate/core/whisper"
)

// The 1:1 interop proofs of issue 14 against status-go v0.70.1 as a separate process,
// over real RLPx: every message's text, author and clock checked on both sides (fromRef,
// toRef), and the encryption mode each side saw.

// checkMode fails unless our message m was encrypted as want.
func checkMode(t *testing.T, m *status.Message, want ratchet.Mode) {
	t.Helper()
	if m.Mode != want {
		t.Fatalf("%q reached us in mode %v, want %v", m.Text, m.Mode, want)
	}
}

// checkRefMode fails unless status-go's message m came to installation inst in mode want.
func checkRefMode(t *testing.T, m Message, inst, want string) {
	t.Helper()
	if m.Envelope.Mode != want || m.Envelope.Entry != inst {
		t.Fatalf("%q reached status-go in mode %q for entry %q, want %q for %q", m.Text, m.Envelope.Mode, m.Envelope.Entry, want, inst)
	}
}

// (a) status-go starts a 1:1 with us with no bundle of ours: DH, then our answer runs
// X3DH from the bundle it carried, then 50 messages alternate through the ratchet.
func TestStatusGo_a_statusGoStartsThen50Alternate(t *testing.T) {
	ref := Start(t, Options{})
	u := newUsLate(t)
	u.skipContactCode(t) // no bundle of ours for status-go: see TestWaku_directBothWays
	u.startDirect(t)
	link(t, u, ref)
	chatID, err := ref.OpenChat(u.pub())
	if err != nil {
		t.Fatal(err)
	}
	cv, err := u.direct.Open(ref.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	m := fromRef(t, ref, chatID, cv.Messages(), "hello from status-go")
	checkMode(t, m, ratchet.ModeDH)
	if m.Installation != ref.InstallationID() {
		t.Fatalf("installation %q, want %q", m.Installation, ref.InstallationID())
	}
	checkRefMode(t, toRef(t, u, cv, ref, "hello from statusgate"), ref.InstallationID(), ModeX3DH)
	for i := range 50 {
		text := fmt.Sprintf("message %d", i)
		if i%2 == 0 {
			checkMode(t, fromRef(t, ref, chatID, cv.Messages(), text), ratchet.ModeDR)
		} else {
			checkRefMode(t, toRef(t, u, cv, ref, text), ref.InstallationID(), ModeDR)
		}
	}
}

// (b) we start the conversation: our first message is DH (no bundle of status-go's
// known), status-go answers with X3DH, then the ratchet runs both ways.
func TestStatusGo_b_weStart(t *testing.T) {
	ref := Start(t, Options{})
	u := newUs(t)
	link(t, u, ref)
	cv, err := u.direct.Open(ref.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ref.OpenChat(u.pub()); err != nil {
		t.Fatal(err)
	}
	checkRefMode(t, toRef(t, u, cv, ref, "first, in DH"), "none", ModeDH)
	checkMode(t, fromRef(t, ref, ChatID(u.pub()), cv.Messages(), "answer, with X3DH"), ratchet.ModeX3DH)
	for i := range 6 {
		text := fmt.Sprintf("b %d", i)
		if i%2 == 0 {
			checkRefMode(t, toRef(t, u, cv, ref, text), ref.InstallationID(), ModeDR)
		} else {
			checkMode(t, fromRef(t, ref, ChatID(u.pub()), cv.Messages(), text), ratchet.ModeDR)
		}
	}
}

// negotiatedTopic is the topic of the secret our identity shares with peer.
func negotiatedTopic(t *testing.T, u *us, peer *Node) [4]byte {
	t.Helper()
	shared, err := ecdhX(u, peer)
	if err != nil {
		t.Fatal(err)
	}
	return [4]byte(whisper.TopicFromName(ratchet.NegotiatedTopicName(shared)))
}

// ecdhX is the 32-byte x-coordinate of our key times peer's (PROTOCOL.md §3.5).
func ecdhX(u *us, peer *Node) ([]byte, error) {
	x, _ := crypto.S256().ScalarMult(peer.PublicKey().X, peer.PublicKey().Y, u.key.D.Bytes())
	b := make([]byte, 32)
	x.FillBytes(b)
	return b, nil
}

// (c) once both sides have a direct message of the other's installation, both move to
// the negotiated topic (symmetric, keyed by the shared secret) and keep talking.
func TestStatusGo_c_negotiatedTopic(t *testing.T) {
	ref := Start(t, Options{})
	u := newUs(t)
	link(t, u, ref)
	chatID, err := ref.OpenChat(u.pub())
	if err != nil {
		t.Fatal(err)
	}
	cv, err := u.direct.Open(ref.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	topic := negotiatedTopic(t, u, ref)
	fromRef(t, ref, chatID, cv.Messages(), "c1")
	toRef(t, u, cv, ref, "c2")
	fromRef(t, ref, chatID, cv.Messages(), "c3")
	// Both have now heard the other's installation: agreed.
	for i := range 4 {
		text := fmt.Sprintf("negotiated %d", i)
		if i%2 == 0 {
			m := toRef(t, u, cv, ref, text)
			if m.Envelope.Topic != topic || m.Envelope.Dst != nil {
				t.Fatalf("%q reached status-go on topic %x (dst %v), want the negotiated topic %x, symmetric", text, m.Envelope.Topic, m.Envelope.Dst, topic)
			}
		} else {
			fromRef(t, ref, chatID, cv.Messages(), text)
			env := lastSent(t, ref)
			if env.Topic != topic || env.Dst != nil {
				t.Fatalf("status-go sent %q on topic %x (dst %v), want the negotiated topic %x, symmetric", text, env.Topic, env.Dst, topic)
			}
		}
	}
}

// lastSent drains ref's sent envelopes and returns the last direct one.
func lastSent(t *testing.T, ref *Node) Envelope {
	t.Helper()
	var last Envelope
	for {
		select {
		case e := <-ref.SentEnvelopes():
			if len(e.Entries) > 0 {
				last = e
			}
			continue
		default:
		}
		if len(last.Entries) == 0 {
			t.Fatal("status-go sent no direct envelope")
		}
		return last
	}
}

// (d) 20 messages delivered in reverse order, each way: the receiver derives and keeps
// the skipped message keys, and every message decrypts, once.
func TestStatusGo_d_outOfOrder(t *testing.T) {
	ref := Start(t, Options{})
	u := newUs(t)
	link(t, u, ref)
	chatID, err := ref.OpenChat(u.pub())
	if err != nil {
		t.Fatal(err)
	}
	cv, err := u.direct.Open(ref.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	fromRef(t, ref, chatID, cv.Messages(), "d start")
	toRef(t, u, cv, ref, "d answer")
	const n = 20

	// status-go → us, reversed.
	if err := ref.Hold(); err != nil {
		t.Fatal(err)
	}
	want := map[[32]byte]Sent{}
	for i := range n {
		s, err := ref.Send(chatID, fmt.Sprintf("from status-go %d", i), "")
		if err != nil {
			t.Fatal(err)
		}
		want[s.ID] = s
	}
	if _, err := ref.Release(true); err != nil {
		t.Fatal(err)
	}
	for range n {
		m := recv(t, cv.Messages())
		s, ok := want[[32]byte(m.ID)]
		if !ok || m.Clock != s.Clock || !m.Author.Equal(ref.PublicKey()) || m.Mode != ratchet.ModeDR {
			t.Fatalf("unexpected or duplicate message %q (id %x, clock %d, mode %v)", m.Text, m.ID[:], m.Clock, m.Mode)
		}
		delete(want, [32]byte(m.ID))
	}

	// us → status-go, reversed.
	u.tr.hold()
	sent := map[[32]byte]uint64{}
	for i := range n {
		clock := cv.NextClock(timeNow())
		id, err := cv.SendMessage(context.Background(), status.Outgoing{Text: fmt.Sprintf("from statusgate %d", i), Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		sent[[32]byte(id)] = clock
	}
	u.tr.release(t, true)
	for range n {
		m := ref.WaitMessage(t, wait)
		clock, ok := sent[m.ID]
		if !ok || m.Clock != clock || !m.From.Equal(u.pub()) || m.Envelope.Mode != ModeDR {
			t.Fatalf("status-go got unexpected or duplicate %q (id %x, clock %d, mode %s)", m.Text, m.ID, m.Clock, m.Envelope.Mode)
		}
		delete(sent, m.ID)
	}
	// And the conversation goes on in order.
	fromRef(t, ref, chatID, cv.Messages(), "d after")
	toRef(t, u, cv, ref, "d after, answer")
}

// (e) our process restarts mid-conversation and continues on the stored sessions: no
// new X3DH either way.
func TestStatusGo_e_weRestart(t *testing.T) {
	ref := Start(t, Options{})
	u := newUs(t)
	link(t, u, ref)
	chatID, err := ref.OpenChat(u.pub())
	if err != nil {
		t.Fatal(err)
	}
	cv, err := u.direct.Open(ref.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	fromRef(t, ref, chatID, cv.Messages(), "e1")
	toRef(t, u, cv, ref, "e2")
	fromRef(t, ref, chatID, cv.Messages(), "e3")
	inst := u.direct.Installation()

	u.restart(t)
	link(t, u, ref)
	if u.direct.Installation() != inst {
		t.Fatalf("installation %q after restart, want %q", u.direct.Installation(), inst)
	}
	if cv, err = u.direct.Open(ref.PublicKey()); err != nil {
		t.Fatal(err)
	}
	checkRefMode(t, toRef(t, u, cv, ref, "e4 after restart"), ref.InstallationID(), ModeDR)
	checkMode(t, fromRef(t, ref, chatID, cv.Messages(), "e5 after restart"), ratchet.ModeDR)
	checkRefMode(t, toRef(t, u, cv, ref, "e6"), ref.InstallationID(), ModeDR)
}

// (f) status-go with a second paired installation: each of our messages reaches both
// devices (one copy each), and we receive from both, each with its installation id.
func TestStatusGo_f_pairedInstallations(t *testing.T) {
	ref1 := Start(t, Options{DeviceName: "phone"})
	ref2 := Start(t, Options{Key: ref1.Key(), DeviceName: "desktop"})
	if err := ref2.AddPeer(ref1.Enode()); err != nil {
		t.Fatal(err)
	}
	ref2.WaitPeer(t, ref1.ID(), wait)
	pair(t, ref2, ref1)
	pair(t, ref1, ref2)

	u := newUs(t)
	link(t, u, ref1)
	link(t, u, ref2)
	chatID, err := ref1.OpenChat(u.pub())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ref2.OpenChat(u.pub()); err != nil {
		t.Fatal(err)
	}
	cv, err := u.direct.Open(ref1.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	// ref1's first message carries a bundle listing both devices.
	m := fromRef(t, ref1, chatID, cv.Messages(), "from the phone")
	if m.Installation != ref1.InstallationID() {
		t.Fatalf("installation %q, want the phone's %q", m.Installation, ref1.InstallationID())
	}
	// status-go copies what one device sends to the other (sendToPairedDevices).
	if c := ref2.WaitMessage(t, wait); c.Text != "from the phone" || !c.From.Equal(ref1.PublicKey()) {
		t.Fatalf("desktop got %q, want the phone's own copy of its message", c.Text)
	}
	for i := range 3 {
		text := fmt.Sprintf("to both devices %d", i)
		m1 := toRef(t, u, cv, ref1, text)
		m2 := ref2.WaitMessage(t, wait)
		if m2.Text != text || m2.ID != m1.ID || m2.Clock != m1.Clock || !m2.From.Equal(u.pub()) {
			t.Fatalf("desktop got %q (id %x, clock %d), phone %q (id %x, clock %d)", m2.Text, m2.ID, m2.Clock, m1.Text, m1.ID, m1.Clock)
		}
		if m1.Envelope.Entry != ref1.InstallationID() || m2.Envelope.Entry != ref2.InstallationID() || len(m1.Envelope.Entries) != 2 {
			t.Fatalf("copies: phone read %q, desktop %q, entries %+v", m1.Envelope.Entry, m2.Envelope.Entry, m1.Envelope.Entries)
		}
	}
	m = fromRef(t, ref2, chatID, cv.Messages(), "from the desktop")
	if m.Installation != ref2.InstallationID() {
		t.Fatalf("installation %q, want the desktop's %q", m.Installation, ref2.InstallationID())
	}
	fromRef(t, ref1, chatID, cv.Messages(), "from the phone again")
}

// pair has from announce itself (SendPairInstallation) and to enable it once it heard.
func pair(t *testing.T, from, to *Node) {
	t.Helper()
	if err := from.Pair(); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case inst := <-to.InstallationEvents():
			if inst.InstallationID != from.InstallationID() {
				continue
			}
			if err := to.EnableInstallation(inst.InstallationID); err != nil {
				t.Fatal(err)
			}
			return
		case <-timeAfter(wait):
			t.Fatalf("%s never heard of the pairing of %s", to.InstallationID(), from.InstallationID())
		}
	}
}

// (g) a DH-mode message from status-go to a key whose bundle it does not know: sent to
// our partitioned topic, ECIES to our key, and read by us.
func TestStatusGo_g_dhToUnknownBundle(t *testing.T) {
	ref := Start(t, Options{})
	u := newUsLate(t)
	u.skipContactCode(t) // no bundle of ours for status-go: see TestWaku_directBothWays
	u.startDirect(t)
	link(t, u, ref)
	chatID, err := ref.OpenChat(u.pub())
	if err != nil {
		t.Fatal(err)
	}
	drainSent(ref)
	m := fromRef(t, ref, chatID, u.direct.Messages(), "dh only")
	checkMode(t, m, ratchet.ModeDH)
	env := lastSent(t, ref)
	want := [4]byte(whisper.TopicFromName(ratchet.PartitionedTopicName(u.pub())))
	if env.Mode != ModeDH || env.Entry != "none" || env.Topic != want || env.Dst == nil || !env.Dst.Equal(u.pub()) {
		t.Fatalf("status-go's DH envelope: mode %s entry %q topic %x dst set %v; want dh to our partitioned topic %x", env.Mode, env.Entry, env.Topic, env.Dst != nil, want)
	}
}

func drainSent(n *Node) {
	for {
		select {
		case <-n.SentEnvelopes():
		default:
			return
		}
	}
}

// The contact code: when our 1:1 side starts it advertises our bundle on our
// contact-code topic (and again every 6 h); status-go listens on the contact-code topic
// of every 1:1 chat it has, learns our bundle from it, and so its first message to us is
// X3DH, not DH as in (a) and (g), where our 1:1 side advertises no contact code.
func TestStatusGo_contactCode(t *testing.T) {
	ref := Start(t, Options{})
	u := newUsLate(t)
	link(t, u, ref)
	chatID, err := ref.OpenChat(u.pub())
	if err != nil {
		t.Fatal(err)
	}
	u.startDirect(t)
	topic := [4]byte(whisper.TopicFromName(ratchet.ContactCodeTopicName(u.pub())))
	deadline := timeAfter(wait)
	for seen := false; !seen; {
		select {
		case e := <-ref.Envelopes():
			if e.Topic != topic {
				continue
			}
			if e.Mode != ModeBundleOnly || e.Signer == nil || !e.Signer.Equal(u.pub()) || len(e.Bundles) != 1 ||
				!e.Bundles[0].Identity.Equal(u.pub()) || e.Bundles[0].Installations[0] != u.direct.Installation() {
				t.Fatalf("status-go read our contact code as %+v", e)
			}
			seen = true
		case <-deadline:
			t.Fatalf("status-go retrieved no envelope on our contact-code topic %x within %v", topic, wait)
		}
	}
	checkMode(t, fromRef(t, ref, chatID, u.direct.Messages(), "I know your bundle from your contact code"), ratchet.ModeX3DH)
}
