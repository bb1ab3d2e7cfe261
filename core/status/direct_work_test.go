package status

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/test/statusnet"
)

// TestDirect_remoteTopicKeysBounded: every stranger whose first message (DH, with a
// bundle of protocol version 1) agrees a negotiated secret with us made Direct derive
// that topic's key (PBKDF2) and subscribe to it: 12 strangers, 12 derivations and 12
// subscriptions. With the Ratchet's secret budget (here a burst of 3, no refill: the
// clock stands still), 3; the other strangers' messages are all delivered, their
// secrets deferred and counted. The deferral loses nothing: once we answer one of them,
// Direct listens on its topic (a peer uses it only after our answer).
func TestDirect_remoteTopicKeysBounded(t *testing.T) {
	const strangers, burst = 12, 3
	nodes := statusnet.NewNodes(t, 2, node.Config{})
	statusnet.Connect(t, nodes[0], nodes[1])
	ctx := context.Background()
	bobKey, _ := crypto.ToECDSA(crypto.Keccak256([]byte("bob")))
	st := tempStore(t)
	still := time.Now()
	c, err := New(nodes[1], Config{Ratchets: StoreRatchets(st, ratchet.Config{NewSecretsBurst: burst, NewSecretsPerMinute: 1,
		Clock: func() time.Time { return still }}), Identity: bobKey, Seen: st})
	if err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithCancel(ctx)
	d, err := c.Direct(dctx, bobKey)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); d.Close() })
	strangersRatchets := StoreRatchets(tempStore(t), ratchet.Config{})
	negotiated := func() int {
		d.mu.Lock()
		defer d.mu.Unlock()
		return len(d.subs) - 1 // the asymmetric topics share one subscription
	}
	var last *ratchet.Secret // the last stranger's, as that stranger sees it
	var lastKey *ecdsa.PrivateKey
	for i := range strangers {
		name := fmt.Sprintf("stranger %d", i)
		k, _ := crypto.ToECDSA(crypto.Keccak256([]byte(name)))
		r, err := strangersRatchets(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		now := uint64(time.Now().UnixMilli())
		p, err := chat.Encode(&chat.Message{Clock: now, Timestamp: now, Text: "hi from " + name, ChatID: "0x04",
			MessageType: chat.MessageTypeOneToOne, ContentType: chat.ContentTextPlain}, chat.FormatProtobuf, k)
		if err != nil {
			t.Fatal(err)
		}
		out, err := r.Encrypt(ctx, &bobKey.PublicKey, p)
		if err != nil {
			t.Fatal(err)
		}
		last, lastKey = out.NewSecret, k
		if _, err := nodes[0].Post(ctx, &whisper.MessageParams{Topic: out.Envelope.Topic, KeySym: out.Envelope.SymKey, Dst: out.Envelope.Dst,
			Src: k, Payload: out.Payload, TTL: DefaultTTL, PoW: DefaultPoW, WorkTime: 5 * time.Second}); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-d.Messages():
			if m.Text != "hi from "+name {
				t.Fatalf("got %q, want %q", m.Text, "hi from "+name)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("%s's message not delivered within 15 s", name)
		}
	}
	r, err := c.cfg.Ratchets(ctx, bobKey)
	if err != nil {
		t.Fatal(err)
	}
	s := r.Stats()
	t.Logf("%d strangers: %d negotiated topics joined, %d topic keys derived (PBKDF2), %d secrets deferred",
		strangers, negotiated(), s.TopicKeysDerived, s.DeferredSecrets)
	if n := negotiated(); n != burst || s.TopicKeysDerived != burst || s.DeferredSecrets != strangers-burst {
		t.Fatalf("%d strangers: %d topics joined, %d keys derived, %d deferred; want %d, %d, %d",
			strangers, n, s.TopicKeysDerived, s.DeferredSecrets, burst, burst, strangers-burst)
	}
	// Bob answers the last stranger (deferred): his own message records the secret and
	// Direct listens on its topic before posting.
	if _, err := d.Send(ctx, &lastKey.PublicKey, "hello"); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	joined := d.subs[last.Topic] != nil
	d.mu.Unlock()
	if !joined {
		t.Fatal("after bob's answer to a deferred stranger, its negotiated topic is not joined")
	}
}
