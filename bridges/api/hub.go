package api

import (
	"sync"
	"sync/atomic"

	"github.com/statusgate/statusgate/bridges"
)

// record is one published event of a channel, ready to write to an SSE stream.
type record struct {
	seq  uint64 // the SSE id: per channel, from 1, in publish order
	kind string // the SSE event name
	key  string // Outbound.Key, for Send's idempotency; "" if none
	data []byte // one line of JSON (wireEvent)
}

// subscriber is one SSE stream's queue.
type subscriber struct {
	// ch is bounded (Config.SubscriberBuffer). Overflow policy: disconnect the slow
	// subscriber. When ch is full, publish removes the subscriber and closes gone; its
	// stream ends, and the client reconnects with Last-Event-ID and resumes from the
	// replay ring. Send never blocks on a subscriber and never drops an event from the
	// ring.
	ch   chan record
	gone chan struct{}
	// queued is the bytes of data in ch; past Config.ReplayBytes the subscriber counts
	// as slow too (count alone would let it pin SubscriberBuffer × 64 KiB events).
	queued atomic.Int64
}

// take returns a record received from ch to the subscriber's byte budget.
func (s *subscriber) take(rec record) record {
	s.queued.Add(-int64(len(rec.data)))
	return rec
}

// gap tells a resuming client that events it has not seen are no longer in the ring.
type gap struct {
	MissedFrom uint64 `json:"missed_from"`         // first sequence number not replayed
	MissedTo   uint64 `json:"missed_to,omitempty"` // last one, when known
	// Reset is true when the client's Last-Event-ID is beyond this run's numbering:
	// the connector restarted since, anything after it may be lost, and numbering
	// began again at 1. The whole ring follows.
	Reset bool `json:"reset,omitempty"`
}

// channel is the state of one served channel: the replay ring and the live
// subscribers.
//
// Lock tier: channel.mu is the connector's only lock. It is held only to update the
// ring and to hand records to subscribers with non-blocking sends; no I/O, callback
// or blocking operation runs under it.
type channel struct {
	name     string
	id       bridges.ChannelID
	buffer   int
	maxCount int   // Config.Replay
	maxBytes int64 // Config.ReplayBytes

	mu sync.Mutex
	// seq is the last sequence number given out.
	seq uint64
	// ring[head:] are the records kept, oldest first, holding bytes bytes of data: at
	// most maxCount records and maxBytes bytes (the newest record is kept whatever its
	// size). Eviction policy: oldest first. ring[:head] are evicted slots, zeroed, and
	// reclaimed when they are the larger half.
	ring  []record
	head  int
	bytes int64
	keys  map[string]uint64 // Outbound.Key → seq, for records in the ring
	subs  map[*subscriber]struct{}
	slow  uint64 // subscribers disconnected for being slow
}

func newChannel(name string, id bridges.ChannelID, replay int, replayBytes int64, buffer int) *channel {
	return &channel{
		name:     name,
		id:       id,
		buffer:   buffer,
		maxCount: replay,
		maxBytes: replayBytes,
		keys:     make(map[string]uint64),
		subs:     make(map[*subscriber]struct{}),
	}
}

// publish appends rec to the ring and queues it for every subscriber, unless rec.key
// is non-empty and a record with that key is still in the ring: then it publishes
// nothing and reports dup. It never blocks.
func (ch *channel) publish(rec record) (seq uint64, dup bool) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if rec.key != "" {
		if seq, ok := ch.keys[rec.key]; ok {
			return seq, true
		}
	}
	ch.seq++
	rec.seq = ch.seq
	ch.ring = append(ch.ring, rec)
	ch.bytes += int64(len(rec.data))
	for n := len(ch.ring) - ch.head; n > 1 && (n > ch.maxCount || ch.bytes > ch.maxBytes); n-- {
		old := &ch.ring[ch.head]
		if old.key != "" && ch.keys[old.key] == old.seq {
			delete(ch.keys, old.key)
		}
		ch.bytes -= int64(len(old.data))
		*old = record{}
		ch.head++
	}
	if ch.head > 64 && ch.head > len(ch.ring)/2 {
		n := copy(ch.ring, ch.ring[ch.head:])
		clear(ch.ring[n:])
		ch.ring, ch.head = ch.ring[:n], 0
	}
	if rec.key != "" {
		ch.keys[rec.key] = rec.seq
	}
	size := int64(len(rec.data))
	for s := range ch.subs {
		if s.queued.Load()+size > ch.maxBytes && len(s.ch) > 0 {
			ch.drop(s) // over its byte budget: slow
			continue
		}
		select {
		case s.ch <- rec:
			s.queued.Add(size)
		default: // full: disconnect (see subscriber)
			ch.drop(s)
		}
	}
	return rec.seq, false
}

// drop disconnects the slow subscriber s. Called with ch.mu held.
func (ch *channel) drop(s *subscriber) {
	delete(ch.subs, s)
	close(s.gone)
	ch.slow++
}

// kept returns how many records the ring holds and their bytes.
func (ch *channel) kept() (n int, bytes int64) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return len(ch.ring) - ch.head, ch.bytes
}

// subscribe registers a new subscriber. When resume is set, it also returns the ring's
// records after sequence number after, oldest first, and a gap when some of those are
// no longer in the ring; otherwise the subscriber gets only events published from now
// on. Both happen under one lock, so nothing is missed or seen twice.
func (ch *channel) subscribe(after uint64, resume bool) (*subscriber, []record, *gap) {
	s := &subscriber{ch: make(chan record, ch.buffer), gone: make(chan struct{})}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.subs[s] = struct{}{}
	if !resume {
		return s, nil, nil
	}
	var g *gap
	if after > ch.seq {
		g = &gap{MissedFrom: after + 1, Reset: true}
		after = 0
	}
	kept := ch.ring[ch.head:]
	oldest := ch.seq - uint64(len(kept)) + 1
	if g == nil && after+1 < oldest {
		g = &gap{MissedFrom: after + 1, MissedTo: oldest - 1}
	}
	var backlog []record
	for _, rec := range kept {
		if rec.seq > after {
			backlog = append(backlog, rec)
		}
	}
	return s, backlog, g
}

// unsubscribe removes s; it is a no-op when publish already dropped it.
func (ch *channel) unsubscribe(s *subscriber) {
	ch.mu.Lock()
	delete(ch.subs, s)
	ch.mu.Unlock()
}

// slowCount returns how many subscribers were disconnected for being slow.
func (ch *channel) slowCount() uint64 {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.slow
}
