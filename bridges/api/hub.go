package api

import (
	"sync"

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
	name   string
	id     bridges.ChannelID
	buffer int

	mu   sync.Mutex
	seq  uint64   // last sequence number given out
	ring []record // at most cap(ring); ring[head] is the oldest once full
	head int
	keys map[string]uint64 // Outbound.Key → seq, for records in the ring
	subs map[*subscriber]struct{}
	slow uint64 // subscribers disconnected for being slow
}

func newChannel(name string, id bridges.ChannelID, replay, buffer int) *channel {
	return &channel{
		name:   name,
		id:     id,
		buffer: buffer,
		ring:   make([]record, 0, replay),
		keys:   make(map[string]uint64),
		subs:   make(map[*subscriber]struct{}),
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
	if len(ch.ring) < cap(ch.ring) {
		ch.ring = append(ch.ring, rec)
	} else {
		old := ch.ring[ch.head]
		if old.key != "" && ch.keys[old.key] == old.seq {
			delete(ch.keys, old.key)
		}
		ch.ring[ch.head] = rec
		ch.head = (ch.head + 1) % len(ch.ring)
	}
	if rec.key != "" {
		ch.keys[rec.key] = rec.seq
	}
	for s := range ch.subs {
		select {
		case s.ch <- rec:
		default: // full: disconnect (see subscriber)
			delete(ch.subs, s)
			close(s.gone)
			ch.slow++
		}
	}
	return rec.seq, false
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
	oldest := ch.seq - uint64(len(ch.ring)) + 1
	if g == nil && after+1 < oldest {
		g = &gap{MissedFrom: after + 1, MissedTo: oldest - 1}
	}
	var backlog []record
	for i := range ch.ring {
		if rec := ch.ring[(ch.head+i)%len(ch.ring)]; rec.seq > after {
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
