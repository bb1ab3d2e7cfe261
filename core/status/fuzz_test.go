package status

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/identity"
	"github.com/statusgate/statusgate/store"
)

// noTransport is a Transport for tests that never reach the network.
type noTransport struct{}

func (noTransport) Subscribe(whisper.Filter) (*whisper.Subscription, error) {
	return nil, errors.New("no transport")
}
func (noTransport) Post(context.Context, *whisper.MessageParams) (*whisper.Envelope, error) {
	return nil, errors.New("no transport")
}

// FuzzPublicAccept enters a public chat's receive path (Chat.accept) with arbitrary
// payloads signed by a fixed key: bare payloads of every generation and ProtocolMessages
// whose bundles are verified and stored in a real SQLite store. It must never panic,
// and whatever it delivers has the chat's name, a non-zero id and the signer or the
// payload's signer as author.
func FuzzPublicAccept(f *testing.F) {
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{Driver: store.DriverSQLite, Path: filepath.Join(f.TempDir(), "state.db")})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	alice, _ := crypto.ToECDSA(crypto.Keccak256([]byte("alice")))
	bob, _ := crypto.ToECDSA(crypto.Keccak256([]byte("bob")))
	rs := StoreRatchets(st, ratchet.Config{})
	c, err := New(noTransport{}, Config{Ratchets: rs, Identity: bob})
	if err != nil {
		f.Fatal(err)
	}
	const name = "fuzz"
	msg := &chat.Message{Clock: 1575000000000, Timestamp: 1575000000000, Text: "hello", ChatID: name,
		MessageType: chat.MessageTypePublicGroup, ContentType: chat.ContentTextPlain}
	for _, format := range []chat.Format{chat.FormatTransit, chat.FormatProtobuf} {
		b, err := chat.Encode(msg, format, alice)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		if format == chat.FormatProtobuf {
			ra, err := rs(ctx, alice)
			if err != nil {
				f.Fatal(err)
			}
			w, err := ra.WrapPublic(ctx, b)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(w)
		}
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		ch := &Chat{c: c, name: name, seen: newDedupe(16), twins: newTwinIndex(16)}
		m := ch.accept(ctx, &whisper.ReceivedMessage{Payload: payload, Src: &alice.PublicKey, Sent: uint32(time.Now().Unix())})
		if m == nil {
			return
		}
		if m.Chat != name || m.ID == (chat.ID{}) || m.Author == nil {
			t.Fatalf("delivered %+v", m)
		}
	})
}

// FuzzDirectAccept enters the SDK's 1:1 receive path (Direct.accept, then the
// bookkeeping after a hand-over) with arbitrary Whisper payloads signed by alice, on a
// real SQLite store: the ProtocolMessage and bundle decoders, every decryption mode, the
// payload decoder and the 1:1 rules. Seeds are alice's DH, X3DH and Double Ratchet
// messages, her contact code and a wrapped public message. It must never panic, and
// whatever it delivers is a 1:1 message with alice as author and chat.
func FuzzDirectAccept(f *testing.F) {
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{Driver: store.DriverSQLite, Path: filepath.Join(f.TempDir(), "state.db")})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	alice, _ := crypto.ToECDSA(crypto.Keccak256([]byte("alice")))
	bob, _ := crypto.ToECDSA(crypto.Keccak256([]byte("bob")))
	rs := StoreRatchets(st, ratchet.Config{})
	ra, err := rs(ctx, alice)
	if err != nil {
		f.Fatal(err)
	}
	rb, err := rs(ctx, bob)
	if err != nil {
		f.Fatal(err)
	}
	c, err := New(noTransport{}, Config{Ratchets: rs, Identity: bob, Seen: st})
	if err != nil {
		f.Fatal(err)
	}
	msg := func(text string, from *ecdsa.PrivateKey, to *ecdsa.PublicKey) []byte {
		b, err := chat.Encode(&chat.Message{Clock: 1575000000000, Timestamp: 1575000000000, Text: text, ChatID: identity.ChatKey(to),
			MessageType: chat.MessageTypeOneToOne, ContentType: chat.ContentTextPlain}, chat.FormatProtobuf, from)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	encrypt := func(r *ratchet.Ratchet, from *ecdsa.PrivateKey, to *ecdsa.PublicKey, text string) []byte {
		out, err := r.Encrypt(ctx, to, msg(text, from, to))
		if err != nil {
			f.Fatal(err)
		}
		return out.Payload
	}
	dh := encrypt(ra, alice, &bob.PublicKey, "dh")
	if _, err := rb.Receive(ctx, &alice.PublicKey, dh); err != nil {
		f.Fatal(err)
	}
	x3dh := encrypt(rb, bob, &alice.PublicKey, "x3dh")
	if _, err := ra.Receive(ctx, &bob.PublicKey, x3dh); err != nil {
		f.Fatal(err)
	}
	cc, err := ra.ContactCode(ctx, nil)
	if err != nil {
		f.Fatal(err)
	}
	pub, err := ra.WrapPublic(ctx, []byte("public"))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range [][]byte{dh, encrypt(ra, alice, &bob.PublicKey, "dr 1"), encrypt(ra, alice, &bob.PublicKey, "dr 2"), cc.Payload, pub} {
		f.Add(s)
	}
	f.Add([]byte{})
	d := &Direct{c: c, as: bob, r: rb, ctx: ctx, convs: map[string]*Conversation{}, clocks: map[string]*chat.Clock{}, seen: newDedupe(64)}
	f.Fuzz(func(t *testing.T, payload []byte) {
		m, _, receipt := d.receive(ctx, &whisper.ReceivedMessage{Payload: payload, Src: &alice.PublicKey, Sent: uint32(time.Now().Unix())})
		d.processed(ctx, m, receipt)
		if m == nil {
			return
		}
		if !m.Author.Equal(&alice.PublicKey) || m.Chat != identity.ChatKey(&alice.PublicKey) || m.ID == (chat.ID{}) {
			t.Fatalf("delivered %+v", m)
		}
	})
}
