package status

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/core/whisper"
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
