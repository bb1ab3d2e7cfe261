package whisper

import (
	"bytes"
	"math"
	"testing"

	"github.com/ethereum/go-ethereum/rlp"
)

func TestEncodeStatus_vector(t *testing.T) {
	h := loadVectors(t).Handshake
	b, err := EncodeStatus(Status{PoW: h.PoW, Bloom: FullBloom(), LightNode: h.Light, Confirmations: h.Confirmations})
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != h.Len || !bytes.HasPrefix(b, unhex(t, h.Prefix)) || !bytes.HasSuffix(b, unhex(t, h.Suffix)) {
		t.Errorf("status = %x (%d bytes)", b, len(b))
	}
	st, err := DecodeStatus(b)
	if err != nil || st.PoW != h.PoW || !st.Bloom.IsFull() || !st.LightNode || !st.Confirmations || st.RateLimits != nil {
		t.Errorf("decode own status: %+v %v", st, err)
	}
	if _, err := EncodeStatus(Status{PoW: math.NaN()}); !errorsIs(err, ErrHandshake) {
		t.Errorf("NaN PoW encoded: %v", err)
	}
}

func TestDecodeStatus_prefixes(t *testing.T) {
	bloom := BloomOf(TopicFromName("status"))
	pow := math.Float64bits(0.002)
	enc := func(items ...any) []byte {
		b, err := rlp.EncodeToBytes(items)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name               string
		body               []byte
		pow                float64
		full, light, confs bool
		limits             *RateLimits
	}{
		{"version only", enc(uint64(6)), 0, true, false, false, nil},
		{"geth: 4 items", enc(uint64(6), pow, bloom[:], true), 0.002, false, true, false, nil},
		{"status-go 2019: 5 items", enc(uint64(6), pow, bloom[:], false, true), 0.002, false, false, true, nil},
		{"status-go 2020: 6 items", enc(uint64(6), pow, bloom[:], false, true, []uint64{5, 6, 7}), 0.002, false, false, true, &RateLimits{5, 6, 7}},
		{"extra items ignored", enc(uint64(6), pow, bloom[:], false, true, []uint64{5, 6, 7}, "x", uint64(9)), 0.002, false, false, true, &RateLimits{5, 6, 7}},
		{"empty bloom is full", enc(uint64(6), pow, []byte{}), 0.002, true, false, false, nil},
		{"bloom of wrong type stops parsing", enc(uint64(6), pow, []any{}, true), 0.002, true, false, false, nil},
		{"PoW of wrong type stops parsing", enc(uint64(6), []any{}, bloom[:]), 0, true, false, false, nil},
		{"non-bool light flag stops parsing", enc(uint64(6), pow, bloom[:], uint64(2), true), 0.002, false, false, false, nil},
	}
	for _, tc := range cases {
		st, err := DecodeStatus(tc.body)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if st.PoW != tc.pow || st.Bloom.IsFull() != tc.full || st.LightNode != tc.light || st.Confirmations != tc.confs ||
			(st.RateLimits == nil) != (tc.limits == nil) || (tc.limits != nil && *st.RateLimits != *tc.limits) {
			t.Errorf("%s: got %+v", tc.name, st)
		}
		if !tc.full && st.Bloom != bloom {
			t.Errorf("%s: bloom not taken", tc.name)
		}
	}
}

func TestDecodeStatus_rejects(t *testing.T) {
	enc := func(items ...any) []byte { b, _ := rlp.EncodeToBytes(items); return b }
	cases := map[string]struct {
		body    []byte
		version bool
	}{
		"empty":          {nil, false},
		"not a list":     {[]byte{0x06}, false},
		"empty list":     {enc(), false},
		"version 5":      {enc(uint64(5)), true},
		"version 7":      {enc(uint64(7), uint64(0)), true},
		"NaN PoW":        {enc(uint64(6), math.Float64bits(math.NaN())), false},
		"+Inf PoW":       {enc(uint64(6), math.Float64bits(math.Inf(1))), false},
		"negative PoW":   {enc(uint64(6), math.Float64bits(-0.5)), false},
		"bloom 63 bytes": {enc(uint64(6), uint64(0), make([]byte, 63)), false},
		"bloom 65 bytes": {enc(uint64(6), uint64(0), make([]byte, 65)), false},
		"trailing bytes": {append(enc(uint64(6)), 0x80), false},
	}
	for name, tc := range cases {
		_, err := DecodeStatus(tc.body)
		if !errorsIs(err, ErrHandshake) || errorsIs(err, ErrVersion) != tc.version {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func FuzzDecodeStatus(f *testing.F) {
	own, _ := EncodeStatus(Status{PoW: 0.001, Bloom: FullBloom(), Confirmations: true, RateLimits: &RateLimits{1, 2, 3}})
	f.Add(own)
	f.Add([]byte{0xc1, 0x06})
	f.Fuzz(func(t *testing.T, body []byte) {
		st, err := DecodeStatus(body)
		if err != nil {
			return
		}
		if math.IsNaN(st.PoW) || math.IsInf(st.PoW, 0) || st.PoW < 0 {
			t.Fatalf("accepted PoW %v", st.PoW)
		}
		again, err := EncodeStatus(st)
		if err != nil {
			t.Fatalf("accepted status does not re-encode: %v", err)
		}
		if st2, err := DecodeStatus(again); err != nil || st2.PoW != st.PoW || st2.Bloom != st.Bloom {
			t.Fatalf("re-encoded status differs: %v", err)
		}
	})
}
