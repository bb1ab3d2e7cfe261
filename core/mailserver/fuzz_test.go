package mailserver

import (
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/statusgate/statusgate/core/whisper"
)

// FuzzDecodeRequest feeds code-126 bodies to the request decoder, seeded with every form
// (late-2019 RLP, RLP with topics, binary with and without limit and cursor, the struct
// with and without topics): it must never panic, every error must wrap a sentinel, and
// what it accepts must be within bounds.
func FuzzDecodeRequest(f *testing.F) {
	sym, err := whisper.SymKeyFromPassword(DefaultPassword)
	if err != nil {
		f.Fatal(err)
	}
	key, _ := crypto.ToECDSA(crypto.Keccak256([]byte("fuzz node")))
	keys := Keys{Sym: sym, Asym: key}
	seal := func(payload []byte) []byte {
		env, err := whisper.Wrap(&whisper.MessageParams{KeySym: sym, Src: key, Payload: payload, TTL: 50,
			Clock: func() time.Time { return time.Unix(1575000000, 0) }})
		if err != nil {
			f.Fatal(err)
		}
		return env.Bytes()
	}
	full := whisper.FullBloom()
	p, _ := EncodePayload(1574913600, 1575000000, full, 1000, nil, true)
	f.Add(seal(p))
	p, _ = EncodePayload(1, 2, full, 0, make([]byte, CursorLength), false)
	f.Add(seal(p))
	f.Add(seal(make([]byte, 8)))
	f.Add(seal(make([]byte, 72)))
	f.Add(seal(make([]byte, 76+CursorLength)))
	f.Add(seal(make([]byte, 76+dbKeyLength)))
	f.Add(seal([]byte("garbage")))
	topics := []whisper.Topic{whisper.TopicFromName("status"), {1, 2, 3, 4}}
	p, _ = EncodePayloadTopics(1612700000, 1612790000, whisper.BloomOf(topics...), topics, 1000, make([]byte, CursorLength), true)
	f.Add(seal(p))
	p, _ = EncodePayloadTopics(1, 2, full, nil, 0, nil, false)
	f.Add(seal(p))
	s, _ := EncodeMessagesRequest([32]byte{1}, 1, 2, 10, nil, full)
	f.Add(s)
	s, _ = rlp.EncodeToBytes(&messagesRequest{ID: make([]byte, 32), From: 1, To: 2, Limit: 10, Bloom: full[:], Topics: [][]byte{topics[0][:]}})
	f.Add(s)
	f.Add([]byte{0xc0})
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeRequest(body, keys, 0)
		if err != nil {
			if !errorsIsAny(err, ErrBadRequest, ErrCursor, ErrUndecryptable, ErrUnsignedRequest, ErrRequestPoW) {
				t.Fatalf("error without sentinel: %v", err)
			}
			return
		}
		if len(req.Cursor) != 0 && len(req.Cursor) != CursorLength {
			t.Fatalf("accepted cursor of %d bytes", len(req.Cursor))
		}
		if req.Form == FormStruct && req.Limit > maxStructLimit {
			t.Fatalf("accepted struct limit %d", req.Limit)
		}
		if len(req.Topics) > MaxRequestTopics {
			t.Fatalf("accepted %d topics", len(req.Topics))
		}
		seen := map[whisper.Topic]bool{}
		for _, tp := range req.Topics {
			if seen[tp] {
				t.Fatalf("topic %x twice", tp)
			}
			seen[tp] = true
		}
		if req.Form < FormPayload || req.Form > FormTopics {
			t.Fatalf("form %d", req.Form)
		}
	})
}

// FuzzDecodeCompletion: never panics; accepted completions re-encode to the same body.
func FuzzDecodeCompletion(f *testing.F) {
	var id [32]byte
	f.Add((&Completion{RequestID: id}).Encode())
	f.Add((&Completion{RequestID: id, Cursor: make([]byte, CursorLength)}).Encode())
	f.Add((&Completion{RequestID: id, Error: "x"}).Encode())
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := DecodeCompletion(body)
		if err != nil {
			return
		}
		if c.Error == "" && len(c.Cursor) != 0 && len(c.Cursor) != CursorLength {
			t.Fatalf("cursor of %d bytes", len(c.Cursor))
		}
	})
}

func errorsIsAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errorsIs(err, t) {
			return true
		}
	}
	return false
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
