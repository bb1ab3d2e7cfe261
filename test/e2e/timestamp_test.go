package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"maunium.net/go/mautrix/event"

	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/core/status"
	"github.com/statusgate/statusgate/identity"
)

// TestE2E_statusTimestampBounded is issue 15 finding 14: a Status message's timestamp
// is the sender's claim, and the Matrix connector sends catch-up events with it as the
// appservice ts, so a Status user could backdate a Matrix message to any time (here
// 2005). A claim further than status.MaxTimestampDrift from the envelope's creation
// time is replaced by that time: the Matrix event is dated within that bound of when
// the envelope was made, which the Whisper network itself bounds (expiry and TTL).
func TestE2E_statusTimestampBounded(t *testing.T) {
	t.Parallel()
	sp := startStatusPeer(t)
	opts := gatewayOptions{peers: []string{sp.ref.Enode()}}
	g := newGateway(t, opts)
	hs := startMatrix(t, g, opts)
	g.start(t)
	g.waitReady(t)
	g.waitPeer(t, sp)
	alice := joinPortal(t, hs, "alice", "Alice")

	mallory, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	past := time.Date(2005, 1, 1, 0, 0, 0, 0, time.UTC)
	now := uint64(time.Now().UnixMilli())
	payload, err := chat.Encode(&chat.Message{Clock: now, Timestamp: uint64(past.UnixMilli()), Text: "backdated",
		ChatID: chatName, MessageType: chat.MessageTypePublicGroup, ContentType: chat.ContentTextPlain},
		chat.FormatProtobuf, mallory)
	if err != nil {
		t.Fatal(err)
	}
	posted := time.Now()
	sp.post(t, mallory, payload)
	ghost := matrixGhost("status:" + identity.ChatKey(&mallory.PublicKey))
	got := alice.waitMessage(t, g, msgTimeout, "mallory's message", func(ev *event.Event, m *event.MessageEventContent) bool {
		return ev.Sender == ghost && strings.Contains(m.Body, "backdated")
	})
	ts := time.UnixMilli(got.Timestamp)
	t.Logf("claimed %s; Matrix event dated %s (posted %s)", past.Format(time.RFC3339), ts.Format(time.RFC3339), posted.Format(time.RFC3339))
	// The envelope was made by the reference node at most a TTL (15 s) before posted.
	if lo := posted.Add(-status.MaxTimestampDrift - 15*time.Second); ts.Before(lo) {
		t.Errorf("Matrix event dated %s, before %s: backdated through the Status timestamp", ts.Format(time.RFC3339), lo.Format(time.RFC3339))
	}
}
