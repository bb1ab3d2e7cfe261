package status

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/core/whisper"
)

// FuzzPublicAcceptEnvelope enters a public chat's receive path as the node does: an
// envelope opened by the chat's own kind of filter (whisper.Filters with LazySigner,
// so the Whisper signer is left to accept), with an arbitrary payload and arbitrary
// signature bytes in the plaintext. It must never panic, and it must never deliver a
// message whose envelope signature does not recover, nor one without an author.
func FuzzPublicAcceptEnvelope(f *testing.F) {
	ctx := context.Background()
	alice, _ := crypto.ToECDSA(crypto.Keccak256([]byte("alice")))
	c, err := New(noTransport{}, Config{})
	if err != nil {
		f.Fatal(err)
	}
	const name = "fuzz"
	key, err := chat.PublicChatKey(name)
	if err != nil {
		f.Fatal(err)
	}
	topic := chat.PublicChatTopic(name)
	fs := whisper.NewFilters()
	if _, err := fs.Install(whisper.Filter{Topics: []whisper.Topic{topic}, SymKey: key, AllowP2P: true, LazySigner: true}); err != nil {
		f.Fatal(err)
	}
	block, err := aes.NewCipher(key.Bytes())
	if err != nil {
		f.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		f.Fatal(err)
	}
	msg := &chat.Message{Clock: 1575000000000, Timestamp: 1575000000000, Text: "hello", ChatID: name,
		MessageType: chat.MessageTypePublicGroup, ContentType: chat.ContentTextPlain}
	for _, format := range []chat.Format{chat.FormatTransit, chat.FormatProtobuf} {
		b, err := chat.Encode(msg, format, alice)
		if err != nil {
			f.Fatal(err)
		}
		// The signature alice's client makes over the plaintext below, and a zero one.
		pt := plaintext(b, nil)
		sig, err := crypto.Sign(crypto.Keccak256(pt[:len(pt)-65]), alice)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, sig)
		f.Add(b, make([]byte, 65))
	}
	nonce := make([]byte, 12)
	f.Fuzz(func(t *testing.T, payload, sig []byte) {
		if len(payload) > 1<<16-1 || len(sig) != 65 {
			return
		}
		pt := plaintext(payload, sig)
		data := append(gcm.Seal(nil, nonce, pt, nil), nonce...)
		env, err := whisper.NewEnvelope(uint32(time.Now().Unix())+15, 15, topic, data, 0)
		if err != nil {
			t.Fatal(err)
		}
		ms := fs.Match(env, false)
		if len(ms) != 1 {
			t.Fatalf("%d matches, want 1 (the framing is valid)", len(ms))
		}
		rm := ms[0].Message
		ch := &Chat{c: c, name: name, seen: newDedupe(16), twins: newTwinIndex(16)}
		m := ch.accept(ctx, rm)
		if m == nil {
			return
		}
		if _, err := rm.Signer(); err != nil {
			t.Fatalf("delivered a message whose envelope signature does not recover: %v", err)
		}
		if m.Chat != name || m.ID == (chat.ID{}) || m.Author == nil {
			t.Fatalf("delivered %+v", m)
		}
	})
}

// plaintext frames payload as a signed Whisper message (2-byte size field, 16 bytes of
// padding) ending in sig, or in 65 zero bytes when sig is nil.
func plaintext(payload, sig []byte) []byte {
	pt := []byte{0x04 | 2, byte(len(payload)), byte(len(payload) >> 8)}
	pt = append(pt, payload...)
	pt = append(pt, make([]byte, 16)...)
	if sig == nil {
		sig = make([]byte, 65)
	}
	return append(pt, sig...)
}
