package chat

import (
	"sort"
	"testing"
	"time"
)

func TestClock_send(t *testing.T) {
	now := time.UnixMilli(1575000000000)
	var c Clock
	if got := c.Send(now); got != 1575000000000 {
		t.Errorf("first send = %d, want now_ms", got)
	}
	if got := c.Send(now); got != 1575000000001 {
		t.Errorf("second send in the same ms = %d, want last+1", got)
	}
	if got := c.Send(now.Add(-time.Hour)); got != 1575000000002 {
		t.Errorf("send with clock skewed back = %d, want last+1", got)
	}
	if got := c.Send(now.Add(time.Second)); got != 1575000001000 {
		t.Errorf("send later = %d, want now_ms", got)
	}
	c.SetLast(^uint64(0))
	if got := c.Send(now); got != ^uint64(0) {
		t.Errorf("send at max = %d, want no wrap", got)
	}
}

func TestClock_receiveCap(t *testing.T) {
	now := time.UnixMilli(1575000000000)
	limit := ClockCap(now)
	if limit != (1575000000000+31*24*3600*1000)*100 {
		t.Fatalf("cap = %d", limit)
	}
	cases := []struct {
		clock  uint64
		capped bool
		last   uint64
	}{
		{5, false, 5},
		{limit, false, limit},
		{limit + 1, true, limit},
		{^uint64(0), true, limit},
	}
	for _, tc := range cases {
		var c Clock
		if got := c.Receive(tc.clock, now); got != tc.capped || c.Last() != tc.last {
			t.Errorf("Receive(%d) = %v, last %d; want %v, %d", tc.clock, got, c.Last(), tc.capped, tc.last)
		}
	}
	if ClockCap(time.UnixMilli(2e17)) != ^uint64(0) {
		t.Error("cap overflows for far-future now")
	}
	if ClockCap(time.Unix(-5, 0)) != uint64(31*24*3600*1000)*100 {
		t.Error("cap before 1970")
	}
}

// The three deployed schemes (§7.4) all pass the cap, and mixing them keeps a sane order:
// after receiving any of them our next message sorts after it.
func TestClock_threeSchemes(t *testing.T) {
	now := time.UnixMilli(1575000000000)
	ms := uint64(now.UnixMilli())
	schemes := []struct {
		name  string
		clock uint64
	}{
		{"status-react ms×100+1", ms*100 + 1},
		{"status-go v0.36 ms+60s", ms + 60000},
		{"status-go v0.39.8 max(ms,last+1)", ms},
	}
	for _, s := range schemes {
		var c Clock
		if c.Receive(s.clock, now) {
			t.Errorf("%s: capped", s.name)
		}
		if ours := c.Send(now); ours <= s.clock {
			t.Errorf("%s: our send %d not after received %d", s.name, ours, s.clock)
		}
	}

	// One chat seeing all three, then our message: ours is last; ties break by id.
	var c Clock
	var keys []SortKey
	for i, s := range schemes {
		c.Receive(s.clock, now)
		keys = append(keys, SortKey{Clock: s.clock, ID: ID{byte(i)}})
	}
	ourKey := SortKey{Clock: c.Send(now), ID: ID{0xff}}
	keys = append(keys, ourKey, SortKey{Clock: ms, ID: ID{0x00}})
	sort.Slice(keys, func(i, j int) bool { return Less(keys[i], keys[j]) })
	if keys[len(keys)-1] != ourKey {
		t.Errorf("our message is not last: %v", keys)
	}
	if keys[0] != (SortKey{Clock: ms, ID: ID{0x00}}) || keys[1] != (SortKey{Clock: ms, ID: ID{2}}) {
		t.Errorf("tie not broken by id: %v", keys[:2])
	}
}
