package gateway

import (
	"log/slog"
	"testing"
	"time"
)

// TestLimiter_timeNeverGoesBack: a sender alternating old and new times (a Status
// sender chooses its envelopes' times within their TTL) gets no more than the burst
// and what the newest time refilled.
func TestLimiter_timeNeverGoesBack(t *testing.T) {
	l := newLimiter(RateLimit{PerSecond: 1, Burst: 2}, slog.New(slog.DiscardHandler))
	t0 := time.Unix(1_800_000_000, 0)
	allowed := 0
	for i := range 100 {
		at := t0.Add(300 * time.Second) // 300 s of refill at most: 2 + 300
		if i%2 == 1 {
			at = t0
		}
		if ok, _ := l.allow("status", "status:0x04aa", at); ok {
			allowed++
		}
	}
	if allowed > 2 {
		t.Errorf("%d of 100 events allowed at alternating times, want the burst (2)", allowed)
	}
}
