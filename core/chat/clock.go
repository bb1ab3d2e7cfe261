package chat

import (
	"bytes"
	"math"
	"time"
)

// ClockCapAhead is how far ahead of local time a received clock may pull a chat's clock:
// status-react's cap, (now_ms + 31 days) × 100 (utils/clocks.cljs). The ×100 is REACT's
// scale, the largest legitimate one (§7.4), so a clock from any generation fits under it
// while a hostile peer cannot pin the chat at 2^64−1 and make every later send wrap or
// stall.
const ClockCapAhead = 31 * 24 * time.Hour

// Clock is one chat's Lamport clock (§7.4). The zero value is a chat with no messages.
// It is not safe for concurrent use: the goroutine that owns the chat owns its Clock.
//
// Three schemes were deployed, each with its own scale:
//
//   - status-react (late 2019): send max(last, now_ms×100)+1, values ≈ 1.5e14;
//   - status-go v0.36 Go client: now_ms+60000 if last < now_ms, else last+1 (≈ 1.5e12);
//   - status-go ≥ v0.39.8 and SPEC-L: max(now_ms, last+1) (≈ 1.5e12).
//
// Send uses the last rule. It never goes backwards (Lamport), and it follows the chat's
// scale: in a chat where a status-react peer spoke, last is on the ×100 scale and last+1
// keeps our message after theirs in every client's order; in a chat of status-go peers
// it stays at now_ms, within the ±120 s window that v0.39.8+ receivers check against the
// Whisper timestamp. (In a chat mixing status-react and v0.39.8+ peers no single value
// satisfies both: the ×100 clock REACT forces on the chat exceeds that window; this is a
// property of the protocols, not of this rule.) REACT's own rule would put every message
// 100× ahead and be discarded by v0.39.8+ receivers; the v0.36 rule jumps 60 s ahead.
type Clock struct {
	last uint64
}

// Last returns the highest clock value seen or sent.
func (c *Clock) Last() uint64 { return c.last }

// Send returns the clock value for a message sent now and records it:
// max(now_ms, last+1).
func (c *Clock) Send(now time.Time) uint64 {
	v := c.last + 1
	if ms := unixMillis(now); ms > v {
		v = ms
	}
	if v < c.last { // last was 2^64−1; only reachable through SetLast, never through Receive
		v = c.last
	}
	c.last = v
	return v
}

// Receive records a received message's clock: last = max(last, min(clock, cap)) with cap
// = (now_ms + 31 days) × 100. It reports whether the clock was above the cap. The message
// itself keeps its clock for ordering (a capped message simply sorts last); only the
// chat's clock is protected.
func (c *Clock) Receive(clock uint64, now time.Time) (capped bool) {
	if limit := ClockCap(now); clock > limit {
		clock, capped = limit, true
	}
	if clock > c.last {
		c.last = clock
	}
	return capped
}

// SetLast restores a clock persisted by its owner.
func (c *Clock) SetLast(v uint64) { c.last = v }

// ClockCap returns the largest clock Receive accepts at time now.
func ClockCap(now time.Time) uint64 {
	const ahead = uint64(ClockCapAhead / time.Millisecond)
	ms := unixMillis(now)
	if ms > math.MaxUint64/100-ahead {
		return math.MaxUint64
	}
	return (ms + ahead) * 100
}

// unixMillis is now in Unix milliseconds, 0 before 1970.
func unixMillis(now time.Time) uint64 {
	ms := now.UnixMilli()
	if ms < 0 {
		return 0
	}
	return uint64(ms)
}

// SortKey is what orders messages in a chat: clock, then message id.
type SortKey struct {
	Clock uint64
	ID    ID
}

// Less orders messages as status-react did (chat/models/message_list.cljs compare-fn):
// by clock, ties broken by message id (bytewise, which equals comparing the "0x…" hex
// strings). Timestamps play no part.
func Less(a, b SortKey) bool {
	if a.Clock != b.Clock {
		return a.Clock < b.Clock
	}
	return bytes.Compare(a.ID[:], b.ID[:]) < 0
}
