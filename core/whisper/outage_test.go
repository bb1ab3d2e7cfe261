package whisper

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock that moves only when the test says.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// waitPeers waits on PeersChanged until s has n peers.
func waitPeers(t *testing.T, s *Service, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		ch := s.PeersChanged()
		if len(s.Peers()) == n {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%d peers, want %d", len(s.Peers()), n)
		}
	}
}

// TestOutage_alone: time without any peer counts as an outage once it is longer than
// the threshold, from when the last peer left to when one is back; shorter times do
// not; OutageSince merges what a caller has not seen. The services do not Run: no
// expiry cycle, so no clock-jump check, only the peer set.
func TestOutage_alone(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	s, err := NewService(Config{Clock: clk.Now, OutageThreshold: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewService(Config{})
	if err != nil {
		t.Fatal(err)
	}
	cut, _ := connect(t, s, other) // the first peer ends no outage: the node just started
	if _, ok := s.OutageSince(0); ok {
		t.Fatal("outage before any peer left")
	}
	cut()
	waitPeers(t, s, 0)
	clk.Add(9 * time.Second) // alone for less than the threshold
	cut, _ = connect(t, s, other)
	if o, ok := s.OutageSince(0); ok {
		t.Fatalf("9 s alone counted: %+v", o)
	}
	cut()
	waitPeers(t, s, 0)
	left := clk.Now()
	clk.Add(11 * time.Second)
	changed := s.PeersChanged()
	cut, _ = connect(t, s, other)
	<-changed
	o, ok := s.OutageSince(0)
	if !ok || o.Seq != 1 || !o.From.Equal(left) || !o.To.Equal(left.Add(11*time.Second)) {
		t.Fatalf("11 s alone: %+v %v, want seq 1 from %v for 11 s", o, ok, left)
	}
	if _, ok := s.OutageSince(o.Seq); ok {
		t.Fatal("an outage after the newest")
	}
	cut()
	waitPeers(t, s, 0)
	clk.Add(time.Minute)
	connect(t, s, other)
	merged, ok := s.OutageSince(0)
	if !ok || merged.Seq != 2 || !merged.From.Equal(left) || !merged.To.Equal(clk.Now()) {
		t.Fatalf("merged: %+v %v, want seq 2 from %v to %v", merged, ok, left, clk.Now())
	}
	if last, _ := s.OutageSince(1); last.Seq != 2 || !last.From.Equal(left.Add(11*time.Second)) {
		t.Fatalf("since 1: %+v", last)
	}
}

// TestOutage_clockJump: the expiry cycle's check sees the clock run ahead of the
// monotonic time between two ticks (a suspended host) by more than the threshold, and
// nothing else: steady ticks, late ticks (a loaded machine: both advance) and a clock
// set back.
func TestOutage_clockJump(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	mono := time.Now()
	var j clockJump
	steps := []struct {
		clock, tick time.Duration // since base and mono
		jumped      bool
	}{
		{0, 0, false},
		{time.Second, time.Second, false},
		{2 * time.Second, 2 * time.Second, false},
		{32 * time.Second, 32 * time.Second, false}, // a tick 30 s late: both moved
		{33 * time.Second, 33 * time.Second, false},
		{20 * time.Second, 34 * time.Second, false}, // set back
		{21 * time.Second, 35 * time.Second, false},
		{10 * time.Minute, 36 * time.Second, true}, // slept
		{10*time.Minute + time.Second, 37 * time.Second, false},
	}
	for i, st := range steps {
		prev := j.clock
		from, jumped := j.check(base.Add(st.clock), mono.Add(st.tick), 10*time.Second)
		if jumped != st.jumped || (jumped && !from.Equal(prev)) {
			t.Errorf("step %d: jumped %v from %v, want %v from %v", i, jumped, from, st.jumped, prev)
		}
	}
}

// TestOutage_jumpRecordedOnce: a clock jump while the node is alone joins that time
// alone, and one seen by the next tick after a peer came back (the tick before it came
// before the jump) is the same outage, recorded once; a jump while peers are connected
// is an outage of its own.
func TestOutage_jumpRecordedOnce(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	s, err := NewService(Config{Clock: clk.Now, OutageThreshold: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewService(Config{})
	if err != nil {
		t.Fatal(err)
	}
	cut, _ := connect(t, s, other)
	cut()
	waitPeers(t, s, 0)
	alone := clk.Now()
	mono := time.Now()
	var j clockJump
	s.checkClockJump(&j, mono) // the last tick before the host slept
	clk.Add(2 * time.Minute)
	connect(t, s, other)
	s.checkClockJump(&j, mono.Add(time.Second)) // the first tick after
	o, ok := s.OutageSince(0)
	if !ok || o.Seq != 1 || !o.From.Equal(alone) {
		t.Fatalf("outages %+v %v, want one, from %v", o, ok, alone)
	}
	clk.Add(5 * time.Minute) // slept while connected
	back := clk.Now()
	s.checkClockJump(&j, mono.Add(2*time.Second))
	o, ok = s.OutageSince(1)
	if !ok || o.Seq != 2 || !o.From.Equal(alone.Add(2*time.Minute)) || !o.To.Equal(back) {
		t.Fatalf("jump while connected: %+v %v, want seq 2 from %v to %v", o, ok, alone.Add(2*time.Minute), back)
	}
}
