package status

import (
	"context"
	"crypto/ecdsa"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/store"
)

// tempStore opens a fresh SQLite store in the test's temporary directory, closed when
// the test ends (the package-internal twin of history_test.go's openStore).
func tempStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{Driver: store.DriverSQLite, Path: filepath.Join(t.TempDir(), "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// startDirect starts c's 1:1 side as key, closed when the test ends.
func startDirect(t *testing.T, c *Client, key *ecdsa.PrivateKey) *Direct {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d, err := c.Direct(ctx, key)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); d.Close() })
	return d
}

// postDirect has from (its Ratchet r) send text to `to` over n as a Status client
// would: a ONE_TO_ONE ChatMessage signed by from, encrypted by r, posted as r says. It
// returns r's Outgoing.
func postDirect(t *testing.T, n *node.Node, from *ecdsa.PrivateKey, r *ratchet.Ratchet, to *ecdsa.PublicKey, text string) *ratchet.Outgoing {
	t.Helper()
	ctx := context.Background()
	now := uint64(time.Now().UnixMilli())
	p, err := chat.Encode(&chat.Message{Clock: now, Timestamp: now, Text: text, ChatID: "0x04",
		MessageType: chat.MessageTypeOneToOne, ContentType: chat.ContentTextPlain}, chat.FormatProtobuf, from)
	if err != nil {
		t.Fatal(err)
	}
	out, err := r.Encrypt(ctx, to, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Post(ctx, &whisper.MessageParams{Topic: out.Envelope.Topic, KeySym: out.Envelope.SymKey, Dst: out.Envelope.Dst,
		Src: from, Payload: out.Payload, TTL: DefaultTTL, PoW: DefaultPoW, WorkTime: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	return out
}

// testClock is a settable clock for a Ratchet (Now) that a test moves on (Advance).
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock { return &testClock{now: time.Now()} }

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *testClock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }
