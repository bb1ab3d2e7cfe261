package whisper

import (
	"bytes"
	"testing"

	"github.com/ethereum/go-ethereum/rlp"
)

// fuzzSeeds are real envelopes of every shape: sym and asym, signed and not, tiny and
// padded-up payloads, plus the §13 vector envelope.
func fuzzSeeds(f *testing.F) (sym []*Envelope, asym []*Envelope) {
	alice, bob := keyOf(f, "alice"), keyOf(f, "bob")
	k := symKeyOf(f, "status")
	for i, payload := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("status"), 60)} {
		for _, src := range []bool{false, true} {
			p := MessageParams{Topic: TopicFromName("status"), Payload: payload, TTL: 15, Rand: fixedRand(i), KeySym: k}
			if src {
				p.Src = alice
			}
			e, err := Wrap(&p)
			if err != nil {
				f.Fatal(err)
			}
			sym = append(sym, e)
			p.KeySym, p.Dst = nil, &bob.PublicKey
			if e, err = Wrap(&p); err != nil {
				f.Fatal(err)
			}
			asym = append(asym, e)
		}
	}
	return sym, asym
}

func FuzzDecodeEnvelope(f *testing.F) {
	sym, asym := fuzzSeeds(f)
	for _, e := range append(sym, asym...) {
		f.Add(e.Bytes())
	}
	f.Add([]byte{0xc0})
	f.Add([]byte{0xc5, 0x01, 0x02, 0x80, 0x80, 0x80})
	f.Fuzz(func(t *testing.T, raw []byte) {
		in := append([]byte(nil), raw...)
		e, err := DecodeEnvelope(in)
		if err != nil {
			if e != nil {
				t.Fatal("error with a non-nil envelope")
			}
			return
		}
		if !bytes.Equal(e.Bytes(), raw) {
			t.Fatal("Bytes differs from the input")
		}
		re, err := NewEnvelope(e.Expiry(), e.TTL(), e.Topic(), e.Data(), e.Nonce())
		if err != nil || re.Hash() != e.Hash() {
			t.Fatalf("re-encoding gives another hash: %v", err)
		}
		_ = e.PoW()
		_ = e.String()
		// The same bytes inside a code-1 style list decode the same way.
		packet, _ := rlp.EncodeToBytes([]*Envelope{e})
		var list []*Envelope
		if err := rlp.DecodeBytes(packet, &list); err != nil || len(list) != 1 || list[0].Hash() != e.Hash() {
			t.Fatalf("list decode: %v", err)
		}
	})
}

func FuzzOpenSymmetric(f *testing.F) {
	sym, _ := fuzzSeeds(f)
	for _, e := range sym {
		f.Add(e.Data())
	}
	k := symKeyOf(f, "status")
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := NewEnvelope(1575000015, 15, TopicFromName("status"), data, 0)
		if err != nil {
			return
		}
		m, err := e.OpenSymmetric(k)
		if err == nil && m.SymKeyHash != k.Hash() {
			t.Fatal("opened without the key hash")
		}
	})
}

func FuzzOpenAsymmetric(f *testing.F) {
	_, asym := fuzzSeeds(f)
	for _, e := range asym {
		f.Add(e.Data())
	}
	bob := keyOf(f, "bob")
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := NewEnvelope(1575000015, 15, TopicFromName("status"), data, 0)
		if err != nil {
			return
		}
		_, _ = e.OpenAsymmetric(bob)
	})
}

func FuzzParsePlaintext(f *testing.F) {
	alice := keyOf(f, "alice")
	for _, n := range []int{0, 1, 255, 256, 300} {
		for _, src := range []bool{false, true} {
			p := &MessageParams{Payload: bytes.Repeat([]byte{'a'}, n)}
			if src {
				p.Src = alice
			}
			pt, err := frame(p, fixedRand(n))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(pt)
		}
	}
	f.Fuzz(func(t *testing.T, pt []byte) {
		m, err := ParsePlaintext(pt)
		if err != nil {
			return
		}
		end := len(pt)
		if m.Signature != nil {
			end -= signatureLength
		}
		if len(m.Payload)+len(m.Padding) > end {
			t.Fatalf("payload %d + padding %d exceed %d", len(m.Payload), len(m.Padding), end)
		}
	})
}
