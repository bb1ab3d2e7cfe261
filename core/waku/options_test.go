package waku

import (
	"encoding/hex"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/rlp"

	"github.com/statusgate/statusgate/core/whisper"
)

func enc(t testing.TB, v any) []byte {
	t.Helper()
	b, err := rlp.EncodeToBytes(uints(v))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// uints turns the ints of a test's literal lists into uint64 (rlp encodes no int).
func uints(v any) any {
	switch x := v.(type) {
	case int:
		return uint64(x)
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = uints(x[i])
		}
		return out
	}
	return v
}

func topics(n int) []whisper.Topic {
	out := make([]whisper.Topic, n)
	for i := range out {
		out[i] = whisper.Topic{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
	}
	return out
}

// TestOptions_roundTrip: every option, both versions, through our encoder and decoder;
// waku/0 drops option 6 and keys by decimal strings.
func TestOptions_roundTrip(t *testing.T) {
	bloom := whisper.BloomOf(whisper.TopicFromName("status"))
	full := Options{PoW: ptr(0.002), BloomFilter: &bloom, LightNode: ptr(true), Confirmations: ptr(false),
		PacketLimits: &whisper.RateLimits{IP: 10, PeerID: 5, Topic: 1}, ByteLimits: &whisper.RateLimits{PeerID: 1 << 20}}
	withTopics := full
	withTopics.BloomFilter, withTopics.TopicInterest, withTopics.HasTopics = nil, topics(3), true
	nothing := Options{TopicInterest: []whisper.Topic{}, HasTopics: true}
	for _, v := range []uint{V1, V0} {
		for _, o := range []Options{full, withTopics, nothing, {}} {
			body, err := EncodeStatus(o, v)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeStatus(body, v)
			if err != nil {
				t.Fatalf("v%d: %v", v, err)
			}
			want := o
			if v == V0 {
				want.ByteLimits = nil
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("v%d: got %+v, want %+v", v, got, want)
			}
		}
	}
	// The wire form, as status-go's StatusOptions.EncodeRLP writes it.
	body, _ := EncodeStatus(Options{PoW: ptr(0.001), LightNode: ptr(false)}, V1)
	if h := hex.EncodeToString(body); h != "ceca80883f50624dd2f1a9fcc20280" {
		t.Errorf("waku/1 status %s", h)
	}
	body, _ = EncodeStatus(Options{PoW: ptr(0.001), LightNode: ptr(false)}, V0)
	if h := hex.EncodeToString(body); h != "d080ceca30883f50624dd2f1a9fcc23280" {
		t.Errorf("waku/0 status %s", h)
	}
}

// TestOptions_rules: what an option list may and may not be. Each bad list fails with
// its typed error.
func TestOptions_rules(t *testing.T) {
	pow := math.Float64bits(0.5)
	full := whisper.FullBloom()
	tooMany := make([][]byte, whisper.MaxTopicInterest+1)
	for i, tp := range topics(len(tooMany)) {
		tooMany[i] = tp[:]
	}
	limit := make([][]byte, whisper.MaxTopicInterest)
	copy(limit, tooMany)
	good := []struct {
		name string
		list any
		want Options
	}{
		{"empty", []any{}, Options{}},
		{"any order", []any{[]any{3, true}, []any{0, pow}}, Options{PoW: ptr(0.5), Confirmations: ptr(true)}},
		{"unknown keys ignored, the options after them read", []any{[]any{7, []any{1, 2}}, []any{99, "x"}, []any{2, true}},
			Options{LightNode: ptr(true)}},
		{"empty bloom (a full node)", []any{[]any{1, []byte{}}}, Options{BloomFilter: &whisper.Bloom{}}},
		{"10,000 topics", []any{[]any{5, limit}}, Options{TopicInterest: topics(whisper.MaxTopicInterest), HasTopics: true}},
		{"topics and bloom: both kept, topics win when applied", []any{[]any{1, full[:]}, []any{5, [][]byte{{1, 2, 3, 4}}}},
			Options{BloomFilter: &full, TopicInterest: []whisper.Topic{{1, 2, 3, 4}}, HasTopics: true}},
	}
	for _, tc := range good {
		got, err := DecodeOptions(enc(t, tc.list), V1)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if tc.name == "empty bloom (a full node)" { // BloomFromBytes: empty is the full filter
			tc.want.BloomFilter = &full
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
	bad := []struct {
		name string
		body []byte
		want error
	}{
		{"not a list", enc(t, uint(5)), ErrOptionList},
		{"trailing bytes", append(enc(t, []any{}), 0x80), ErrOptionList},
		{"an option that is a string", enc(t, []any{"x"}), ErrOptionList},
		{"an option of one item", enc(t, []any{[]any{0}}), ErrOptionList},
		{"an option of three items", enc(t, []any{[]any{0, pow, 1}}), ErrOptionList},
		{"options nested one level too deep", enc(t, []any{[]any{[]any{0, pow}}}), ErrOptionList},
		{"duplicate key", enc(t, []any{[]any{0, pow}, []any{0, pow}}), ErrDuplicateOption},
		{"duplicate unknown key", enc(t, []any{[]any{9, 1}, []any{9, 1}}), ErrDuplicateOption},
		{"key that is a list", enc(t, []any{[]any{[]any{}, pow}}), ErrOptionType},
		{"non-canonical key", []byte{0xc4, 0xc3, 0x81, 0x00, 0x01}, ErrOptionList},
		{"key with a leading zero", []byte{0xc5, 0xc4, 0x82, 0x00, 0x01, 0x01}, ErrOptionType},
		{"PoW that is a list", enc(t, []any{[]any{0, []any{pow}}}), ErrOptionType},
		{"PoW of nine bytes", enc(t, []any{[]any{0, make([]byte, 9)}}), ErrOptionType},
		{"NaN PoW", enc(t, []any{[]any{0, math.Float64bits(math.NaN())}}), ErrInvalidPoW},
		{"infinite PoW", enc(t, []any{[]any{0, math.Float64bits(math.Inf(1))}}), ErrInvalidPoW},
		{"negative PoW", enc(t, []any{[]any{0, math.Float64bits(-1)}}), ErrInvalidPoW},
		{"bloom of 63 bytes", enc(t, []any{[]any{1, make([]byte, 63)}}), ErrOptionType},
		{"bloom that is a list", enc(t, []any{[]any{1, []any{}}}), ErrOptionType},
		{"light flag 2", enc(t, []any{[]any{2, 2}}), ErrOptionType},
		{"confirmations as a list", enc(t, []any{[]any{3, []any{}}}), ErrOptionType},
		{"rate limits of two items", enc(t, []any{[]any{4, []uint{1, 2}}}), ErrOptionType},
		{"rate limits of four items", enc(t, []any{[]any{6, []uint{1, 2, 3, 4}}}), ErrOptionType},
		{"rate limits that are a number", enc(t, []any{[]any{4, 5}}), ErrOptionType},
		{"topic of five bytes", enc(t, []any{[]any{5, [][]byte{{1, 2, 3, 4, 5}}}}), ErrOptionType},
		{"topics that are a string", enc(t, []any{[]any{5, []byte{1, 2, 3, 4}}}), ErrOptionType},
		{"10,001 topics", enc(t, []any{[]any{5, tooMany}}), ErrTooManyTopics},
	}
	for _, tc := range bad {
		if _, err := DecodeOptions(tc.body, V1); !errorsIs(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := EncodeStatus(Options{PoW: ptr(math.NaN())}, V1); !errorsIs(err, ErrInvalidPoW) {
		t.Errorf("encoding a NaN PoW: %v", err)
	}
	if _, err := EncodeStatus(Options{TopicInterest: topics(whisper.MaxTopicInterest + 1), HasTopics: true}, V1); !errorsIs(err, ErrTooManyTopics) {
		t.Errorf("encoding 10,001 topics: %v", err)
	}
}

// TestOptions_v0: waku/0's handshake is [0, options] with string keys; version,
// nesting and key types are checked, and its key "6" is unknown.
func TestOptions_v0(t *testing.T) {
	pow := math.Float64bits(0.25)
	got, err := DecodeStatus(enc(t, []any{0, []any{[]any{"0", pow}, []any{"6", []uint{1, 2, 3}}, []any{"4", []uint{1, 2, 3}}}}), V0)
	if err != nil || *got.PoW != 0.25 || got.ByteLimits != nil || *got.PacketLimits != (whisper.RateLimits{IP: 1, PeerID: 2, Topic: 3}) {
		t.Fatalf("%+v %v", got, err)
	}
	// An integer key is not a waku/0 key: unknown, ignored.
	if got, err := DecodeStatus(enc(t, []any{0, []any{[]any{0, pow}}}), V0); err != nil || got.PoW != nil {
		t.Fatalf("integer key in waku/0: %+v %v", got, err)
	}
	bad := []struct {
		name string
		body []byte
		want error
	}{
		{"version 1", enc(t, []any{1, []any{}}), ErrVersion},
		{"no version", enc(t, []any{[]any{[]any{"0", pow}}}), ErrOptionType},
		{"the v1 form (options not under the version)", enc(t, []any{[]any{"0", pow}}), ErrOptionType},
		{"options not a list", enc(t, []any{0, "x"}), ErrOptionList},
		{"an item after the options", enc(t, []any{0, []any{}, 1}), ErrOptionList},
		{"no options", enc(t, []any{0}), ErrOptionList},
		{"a list key", enc(t, []any{0, []any{[]any{[]any{}, pow}}}), ErrOptionType},
		{"duplicate key", enc(t, []any{0, []any{[]any{"2", true}, []any{"2", false}}}), ErrDuplicateOption},
	}
	for _, tc := range bad {
		if _, err := DecodeStatus(tc.body, V0); !errorsIs(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
	}
	if !strings.Contains(Wire(V0).(wire).Name(), "waku") {
		t.Fatal("wire name")
	}
}
