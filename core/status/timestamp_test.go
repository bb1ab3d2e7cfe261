package status

import (
	"testing"
	"time"
)

func TestBoundedTimestamp(t *testing.T) {
	sent := time.Unix(1_700_000_000, 0)
	ms := func(t time.Time) uint64 { return uint64(t.UnixMilli()) }
	for _, tc := range []struct {
		name     string
		claimed  uint64
		want     time.Time
		replaced bool
	}{
		{"same", ms(sent), sent, false},
		{"skew inside the bound", ms(sent.Add(-MaxTimestampDrift)), sent.Add(-MaxTimestampDrift), false},
		{"ahead inside the bound", ms(sent.Add(MaxTimestampDrift)), sent.Add(MaxTimestampDrift), false},
		{"backdated", ms(time.Date(2005, 1, 1, 0, 0, 0, 0, time.UTC)), sent, true},
		{"just past the bound", ms(sent.Add(-MaxTimestampDrift - time.Millisecond)), sent, true},
		{"far future", ms(sent.Add(24 * time.Hour)), sent, true},
		{"zero", 0, sent, true},
		{"overflow", 1<<64 - 1, sent, true},
	} {
		got, replaced := boundedTimestamp(tc.claimed, sent)
		if !got.Equal(tc.want) || replaced != tc.replaced {
			t.Errorf("%s: %v, %v; want %v, %v", tc.name, got, replaced, tc.want, tc.replaced)
		}
	}
}
