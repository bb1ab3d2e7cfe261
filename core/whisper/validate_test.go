package whisper

import (
	"testing"
	"time"
)

func TestAcceptance_check(t *testing.T) {
	now := time.Unix(1_600_000_000, 0)
	status := TopicFromName("status")
	other := TopicFromName("other")
	sealed := func(sentOffset int64, ttl uint32, topic Topic, data []byte, pow float64) *Envelope {
		e, err := NewEnvelope(uint32(now.Unix()+sentOffset)+ttl, ttl, topic, data, 0)
		if err != nil {
			t.Fatal(err)
		}
		if pow > 0 {
			if e, err = e.Seal(SealOptions{PoW: pow, WorkTime: 5 * time.Second}); err != nil {
				t.Fatal(err)
			}
		}
		return e
	}
	a := &Acceptance{MinPoW: 0.001, PrevMinPoW: 0.001, Bloom: BloomOf(status), PrevBloom: BloomOf(status)}
	capped := &Acceptance{MinPoW: 0.001, PrevMinPoW: 0.001, Bloom: BloomOf(status), PrevBloom: BloomOf(status), MaxTTL: 300}
	data := make([]byte, 300)
	cases := []struct {
		name string
		acc  *Acceptance
		env  *Envelope
		ok   bool
		want error
	}{
		{"fresh", a, sealed(0, 15, status, data, 0.002), true, nil},
		{"future within allowance", a, sealed(10, 15, status, data, 0.01), true, nil},
		{"future beyond allowance", a, sealed(11, 15, status, data, 0.002), false, ErrFromFuture},
		{"expired recently: silent drop", a, sealed(-30, 15, status, data, 0.002), false, nil},
		{"expired 20 s ago: still silent", a, sealed(-35, 15, status, data, 0.002), false, nil},
		{"very old", a, sealed(-36, 15, status, data, 0.002), false, ErrVeryOld},
		{"oversize", &Acceptance{MaxSize: 200, Bloom: FullBloom(), PrevBloom: FullBloom()}, sealed(0, 15, status, data, 0), false, ErrEnvelopeTooLarge},
		{"no work", a, sealed(0, 15, status, data, 0), false, ErrPoWTooLow},
		{"TTL 0 is no work", a, sealed(0, 0, status, data, 0), false, ErrPoWTooLow},
		{"outside bloom", a, sealed(0, 15, other, data, 0.002), false, ErrBloomMismatch},
		{"full node takes any topic", &Acceptance{MinPoW: 0.001, Bloom: FullBloom()}, sealed(0, 15, other, data, 0.002), true, nil},
		{"previous PoW still tolerated", &Acceptance{MinPoW: 1e9, PrevMinPoW: 0.001, Bloom: FullBloom()}, sealed(0, 15, status, data, 0.002), true, nil},
		{"previous bloom still tolerated", &Acceptance{MinPoW: 0.001, Bloom: BloomOf(other), PrevBloom: BloomOf(status)}, sealed(0, 15, status, data, 0.002), true, nil},
		{"TTL at the cap", capped, sealed(0, 300, status, data, 0.002), true, nil},
		{"TTL above the cap", capped, sealed(0, 301, status, data, 0.002), false, ErrTTLTooLong},
		{"geth's rules come first", capped, sealed(0, 3600, other, data, 0.002), false, ErrBloomMismatch},
		{"no cap: any TTL", a, sealed(0, 3600, status, data, 0.002), true, nil},
	}
	for _, tc := range cases {
		ok, err := tc.acc.Check(tc.env, now)
		if ok != tc.ok || (tc.want == nil) != (err == nil) || (tc.want != nil && !errorsIs(err, tc.want)) {
			t.Errorf("%s: ok=%v err=%v, want ok=%v err=%v", tc.name, ok, err, tc.ok, tc.want)
		}
	}
	// The future adjustment must actually bite: an envelope sealed for just over the
	// minimum, created 10 s ahead, is credited with TTL+11 instead of TTL and fails.
	e := sealed(10, 15, status, data, 0)
	credited := e.PoWAt(now)
	strict := &Acceptance{MinPoW: e.PoW(), PrevMinPoW: e.PoW(), Bloom: FullBloom()}
	if credited >= e.PoW() {
		t.Fatalf("adjusted PoW %v not below raw %v", credited, e.PoW())
	}
	if _, err := strict.Check(e, now); !errorsIs(err, ErrPoWTooLow) {
		t.Errorf("post-dated envelope at the raw minimum: %v", err)
	}
	if !IsTimeError(ErrVeryOld) || !IsTimeError(ErrFromFuture) || IsTimeError(ErrPoWTooLow) {
		t.Error("IsTimeError classification")
	}
}
