package whisper

import (
	"bytes"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/rlp"
)

func TestDecodeEnvelope_badInput(t *testing.T) {
	topic := TopicFromName("status")
	good, _ := NewEnvelope(1575000015, 15, topic, []byte("data"), 7)
	enc := func(v ...any) []byte {
		b, err := rlp.EncodeToBytes(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name string
		raw  []byte
		want error
	}{
		{"empty", nil, ErrMalformedEnvelope},
		{"garbage", []byte{0xde, 0xad, 0xbe, 0xef}, ErrMalformedEnvelope},
		{"truncated", good.Bytes()[:len(good.Bytes())-2], ErrMalformedEnvelope},
		{"trailing bytes", append(append([]byte(nil), good.Bytes()...), 0x80), ErrMalformedEnvelope},
		{"not a list", enc(uint64(1))[1:], ErrMalformedEnvelope},
		{"too few fields", enc(uint32(1), uint32(2), topic[:], []byte("d")), ErrMalformedEnvelope},
		{"extra field", enc(uint32(1), uint32(2), topic[:], []byte("d"), uint64(3), uint64(4)), ErrMalformedEnvelope},
		{"topic 3 bytes", enc(uint32(1), uint32(2), topic[:3], []byte("d"), uint64(3)), ErrTopicLength},
		{"topic 5 bytes", enc(uint32(1), uint32(2), append(topic[:], 1), []byte("d"), uint64(3)), ErrTopicLength},
		{"expiry overflows uint32", enc(uint64(1)<<32, uint32(2), topic[:], []byte("d"), uint64(3)), ErrMalformedEnvelope},
		{"non-canonical int", []byte{0xca, 0x82, 0x00, 0x01, 0x0f, 0x84, 1, 2, 3, 4, 0x80, 0x80}, ErrMalformedEnvelope},
		{"data is a list", enc(uint32(1), uint32(2), topic[:], []any{}, uint64(3)), ErrMalformedEnvelope},
		{"declared length past end", []byte{0xf9, 0xff, 0xff, 0x01}, ErrMalformedEnvelope},
	}
	for _, tc := range cases {
		_, err := DecodeEnvelope(tc.raw)
		if !errorsIs(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestDecodeEnvelope_oversize(t *testing.T) {
	if _, err := NewEnvelope(1, 1, Topic{}, make([]byte, MaxMessageSize), 0); !errorsIs(err, ErrEnvelopeTooLarge) {
		t.Errorf("NewEnvelope over the hard cap: %v", err)
	}
	big, err := rlp.EncodeToBytes([]any{uint32(1), uint32(1), Topic{}, make([]byte, MaxMessageSize), uint64(0)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeEnvelope(big); !errorsIs(err, ErrEnvelopeTooLarge) {
		t.Errorf("decode over the hard cap: %v", err)
	}
	e, _ := NewEnvelope(1, 1, Topic{}, make([]byte, 2000), 0)
	if err := e.CheckSize(2020); err != nil {
		t.Errorf("size 2020 within 2020: %v", err)
	}
	if err := e.CheckSize(2019); !errorsIs(err, ErrEnvelopeTooLarge) {
		t.Errorf("size 2020 over 2019: %v", err)
	}
}

func TestEnvelope_rlpRoundTripAllShapes(t *testing.T) {
	for _, n := range []int{0, 1, 55, 56, 255, 256, 65535, 65536} {
		for _, first := range []byte{0x00, 0x7f, 0x80, 0xff} {
			data := bytes.Repeat([]byte{first}, n)
			for _, nonce := range []uint64{0, 1, 127, 128, 1 << 40} {
				e, err := NewEnvelope(0x7f, 300, Topic{1, 2, 3, 4}, data, nonce)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := rlp.EncodeToBytes([]any{uint32(0x7f), uint32(300), [4]byte{1, 2, 3, 4}, data, nonce})
				if !bytes.Equal(e.Bytes(), want) {
					t.Fatalf("n=%d first=%x nonce=%d: encoding differs from rlp", n, first, nonce)
				}
				d, err := DecodeEnvelope(want)
				if err != nil || d.Hash() != e.Hash() || !bytes.Equal(d.Data(), data) || d.Nonce() != nonce {
					t.Fatalf("n=%d: decode: %v", n, err)
				}
				// PoW from our streamed short RLP equals PoW over rlp.EncodeToBytes's.
				var buf bytes.Buffer
				shortRLP(&buf, 0x7f, 300, &Topic{1, 2, 3, 4}, data)
				ws, _ := rlp.EncodeToBytes([]any{uint32(0x7f), uint32(300), [4]byte{1, 2, 3, 4}, data})
				if !bytes.Equal(buf.Bytes(), ws) {
					t.Fatalf("n=%d first=%x: short RLP differs", n, first)
				}
			}
		}
	}
}

func TestEnvelope_listDecodeViaRLPStream(t *testing.T) {
	a, _ := NewEnvelope(10, 5, TopicFromName("a"), []byte("one"), 1)
	b, _ := NewEnvelope(11, 5, TopicFromName("b"), []byte("two"), 2)
	packet, err := rlp.EncodeToBytes([]*Envelope{a, b})
	if err != nil {
		t.Fatal(err)
	}
	var got []*Envelope
	if err := rlp.DecodeBytes(packet, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Hash() != a.Hash() || got[1].Hash() != b.Hash() {
		t.Fatalf("decoded %d envelopes", len(got))
	}
	bad, _ := rlp.EncodeToBytes([]any{[]any{uint32(1)}})
	if err := rlp.DecodeBytes(bad, &got); !errorsIs(err, ErrMalformedEnvelope) {
		t.Errorf("garbage list: %v", err)
	}
}

func TestPoWAt_futureAdjustment(t *testing.T) {
	e, _ := NewEnvelope(1000+15, 15, TopicFromName("status"), []byte("x"), 3)
	base := e.PoW()
	if got := e.PoWAt(time.Unix(1000, 0)); got != base {
		t.Errorf("sent == now: %v, want %v", got, base)
	}
	// Created 4 s in the future: geth divides by TTL + 4 + 1.
	if got, want := e.PoWAt(time.Unix(996, 0)), base*15/20; got != want {
		t.Errorf("future by 4 s: %v, want %v", got, want)
	}
	if got := e.PoWAt(time.Unix(980, 0)); got != base {
		t.Errorf("beyond the allowance the node rejects; PoWAt leaves it: %v", got)
	}
	if !e.Expired(time.Unix(1016, 0)) || e.Expired(time.Unix(1015, 0)) {
		t.Error("Expired boundary")
	}
}

func TestPoWTargetBits_edges(t *testing.T) {
	cases := []struct {
		pow  float64
		size int
		ttl  uint32
		want int
	}{
		{0.002, 532, 15, 4},
		{0.0000001, 100, 10, 1},
		{1, 100, 0, 1},
		{1e300, 1 << 20, 1 << 30, 257},
	}
	for _, tc := range cases {
		if got := PoWTargetBits(tc.pow, tc.size, tc.ttl); got != tc.want {
			t.Errorf("PoWTargetBits(%v,%d,%d) = %d, want %d", tc.pow, tc.size, tc.ttl, got, tc.want)
		}
	}
}

// TestEnvelope_detached: a copy out of its packet has the same fields, bytes, hash and
// PoW, and shares no memory with the packet.
func TestEnvelope_detached(t *testing.T) {
	var envs []*Envelope
	for i, data := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("status"), 100)} {
		env, err := NewEnvelope(1700000300, 300, TopicFromName("t"), data, uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, env)
	}
	body, err := rlp.EncodeToBytes(envs)
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := decodeEnvelopeList(body)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range decoded {
		d := e.detached()
		if d.hash != envs[i].hash || !bytes.Equal(d.raw, e.raw) || !bytes.Equal(d.Data(), envs[i].Data()) ||
			d.expiry != e.expiry || d.ttl != e.ttl || d.topic != e.topic || d.nonce != e.nonce || d.PoW() != envs[i].PoW() {
			t.Errorf("envelope %d: detached %v differs from %v", i, d, e)
		}
		for j := range body { // no byte of the packet is shared
			if len(d.raw) > 0 && &body[j] == &d.raw[0] || len(d.Data()) > 0 && &body[j] == &d.Data()[0] {
				t.Fatalf("envelope %d: detached still aliases the packet", i)
			}
		}
	}
}
