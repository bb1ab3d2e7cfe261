package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/records"
)

// statusSettle is how long a Status delivery stays unmarked: two Whisper transmission
// cycles (300 ms each), after which its envelopes have left the node's in-memory pool
// for every connected peer. Posting only puts them in that pool; a crash before they
// leave would lose them, so they are sent again after a restart instead (same message
// ids: clients show them once). Eager forwarding usually sends them within a
// millisecond, but a peer's packet budget can hold them back until the next cycle,
// which sends whatever is pending: one cycle is the bound, two the margin.
const statusSettle = 600 * time.Millisecond

// outboxBatch is how many pending entries one ledger read fetches.
const outboxBatch = 128

// outbox delivers one destination's entries in order, one at a time (or several first
// attempts at once where the destination allows: Status), and keeps one failing entry from holding up the others
// (issue 15 finding 1):
//
//   - an entry whose attempt fails is passed over for now and the next entry is tried
//     (the probe); if that goes through, the failed entry is tried again at once, and
//     if it fails again, right after a success, it is moved aside: retried on its own
//     back-off, out of order, until it goes through or fails for good, visibly. So a
//     message the destination will not take costs the ones behind it one attempt's time,
//     never its retry budget;
//   - when the probe fails too, the destination itself is failing: order is kept, the
//     first failed entry (the head) is retried after its back-off, and each round also
//     probes one entry not tried yet, until one goes through.
//
// Its goroutine is owned by Gateway.Run; only that goroutine touches failing, aside and
// parts.
type outbox struct {
	g     *Gateway
	dest  bridges.ChannelID
	net   string
	rt    *route
	to    destination
	log   *slog.Logger
	kick  chan struct{} // capacity 1: "there may be new entries"
	depth atomic.Int64
	marks sync.WaitGroup // deliveries handed to markLoop, not yet written (waited for by this goroutine only)
	// marked counts the same marks for other goroutines (a WaitGroup must not be
	// waited on while another goroutine may Add from zero).
	marked markCounter
	// unmarked holds the entry IDs of those deliveries, so that a re-read of the
	// outbox does not deliver them again.
	unmarked unmarkedSet

	// failing are the entries whose attempts failed since the last success, in order of
	// failure: failing[0] is the head. One entry joins per retry round; all leave at
	// the next success.
	failing []failedEntry
	// aside are the entries passed over (entry ID → state). Bounded by the pending
	// entries (QueueLimit): an entry leaves when it is delivered or failed for good.
	aside map[int64]asideEntry
	// parts are the receipts of the parts of a split message already posted (entry ID
	// → receipts, in part order), so that a retry in this process posts only the rest.
	// Bounded like aside.
	parts map[int64][]string
}

// asideEntry is the state of an entry in outbox.aside.
type asideEntry struct {
	next time.Time // not before (zero: now)
	// recheck: the entry failed, then an entry behind it went through; it is being tried
	// again, and failing now moves it aside for its back-off.
	recheck bool
}

// failedEntry is one entry of outbox.failing.
type failedEntry struct {
	id       int64
	attempts int
	next     time.Time // when its back-off ends
}

func (g *Gateway) newOutbox(dest bridges.ChannelID, rt *route, to destination) *outbox {
	return &outbox{g: g, dest: dest, net: dest.Network(), rt: rt, to: to, kick: make(chan struct{}, 1),
		log: g.log.With("dest", string(dest)), aside: map[int64]asideEntry{}, parts: map[int64][]string{}}
}

// added is called after entries for this destination were persisted.
func (o *outbox) added() {
	d := o.depth.Add(1)
	o.g.m.depth.WithLabelValues(string(o.dest)).Set(float64(d))
	o.g.mu.Lock()
	o.g.signalLocked()
	o.g.mu.Unlock()
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

func (o *outbox) done() {
	d := o.depth.Add(-1)
	if d < 0 {
		o.depth.Store(0)
		d = 0
	}
	o.g.m.depth.WithLabelValues(string(o.dest)).Set(float64(d))
	o.g.mu.Lock()
	o.g.signalLocked()
	o.g.mu.Unlock()
}

// outcome is what one attempt at an entry came to.
type outcome uint8

const (
	sent    outcome = iota // delivered
	ended                  // failed for good
	retry                  // a failed attempt, recorded; the entry stays pending
	stopped                // ctx ended (or the destination is not connected yet)
)

// run delivers entries until ctx ends. Ledger errors are retried with back-off.
func (o *outbox) run(ctx context.Context) {
	var after int64
	storeBack := backoff{min: 100 * time.Millisecond, max: 10 * time.Second}
	for ctx.Err() == nil {
		// Before the read: an entry whose mark was written by now is not read back as
		// pending, and one written later is still in the set when the page is filtered.
		o.unmarked.prune()
		entries, err := o.g.ledger.PendingEntries(ctx, string(o.dest), after, outboxBatch)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			wait := storeBack.next()
			o.log.Error("read outbox failed; retrying", "err", err, "in", wait)
			o.g.sleep(ctx, wait)
			continue
		}
		storeBack = backoff{min: storeBack.min, max: storeBack.max}
		// Entries delivered whose marks are not written yet are still pending in the
		// ledger: skip them.
		full := len(entries) == outboxBatch
		var last int64
		if len(entries) > 0 {
			last = entries[len(entries)-1].ID
		}
		entries = slices.DeleteFunc(entries, func(e records.OutboxEntry) bool { return o.unmarked.has(e.ID) })
		if len(entries) == 0 && full {
			after = last // a page of deliveries still being marked: read on past them
			continue
		}
		if len(entries) == 0 {
			// Idle. The outbox does not wait for its marks here (a Status mark waits out
			// statusSettle, a connector's a disk sync): the unmarked set keeps their
			// entries from being delivered again, and new entries have greater IDs, so
			// the read goes on from the last one seen. Only entries passed over (aside,
			// failing) lie behind it: with any, the next read starts at the first.
			after = min(max(after, last), o.firstPassedOver()-1)
			wake := o.g.clock.NewTimer(o.idleWait())
			select {
			case <-ctx.Done():
				wake.Stop()
				return
			case <-o.kick:
			case <-wake.C(): // an entry aside is due, or entries added by another process sharing the store
			}
			wake.Stop()
			continue
		}
		after = o.runBatch(ctx, entries, after)
	}
}

// idleWait is how long an idle outbox waits before it looks again without a kick: until
// the first entry set aside or failing is due, at most 5 s (entries added by another
// process sharing the store).
func (o *outbox) idleWait() time.Duration {
	now := o.g.clock.Now()
	wait := 5 * time.Second
	for _, a := range o.aside {
		wait = min(wait, a.next.Sub(now))
	}
	for _, f := range o.failing {
		wait = min(wait, f.next.Sub(now))
	}
	return max(wait, time.Millisecond)
}

// runBatch works through one page of pending entries and returns where the next read
// starts.
func (o *outbox) runBatch(ctx context.Context, entries []records.OutboxEntry, after int64) int64 {
	for i := 0; i < len(entries); {
		e := entries[i]
		if o.waiting(e) {
			after = e.ID
			i++
			continue
		}
		if n := o.parallelizable(entries[i:]); n > 1 {
			switch from := o.processParallel(ctx, entries[i:i+n]); {
			case from < 0: // every one failed: the destination is failing
				return o.restart(ctx)
			case from > 0: // some failed while others went through: try them again now
				return from - 1
			}
			after = entries[i+n-1].ID
			i += n
			continue
		}
		wasFailing := o.isFailing(e.ID)
		switch o.process(ctx, e) {
		case stopped:
			return after
		case retry:
			if !wasFailing && len(o.failing) > 1 {
				// Two in a row: the destination is failing. Keep the order: wait out the
				// head's back-off and start again from it. (The head failing again goes
				// on to probe one entry not tried yet.)
				return o.restart(ctx)
			}
		case sent:
			if len(o.failing) > 0 {
				// The probe went through: try the failed entries again at once, in order.
				return o.passOver()
			}
		}
		after = e.ID
		i++
	}
	return after
}

// waiting reports whether e is not to be attempted now: aside with its back-off not
// over, failing but not the head, the head before its back-off ends, or, read back after
// a restart, its recorded next attempt still ahead.
func (o *outbox) waiting(e records.OutboxEntry) bool {
	now := o.g.clock.Now()
	if a, ok := o.aside[e.ID]; ok {
		return now.Before(a.next)
	}
	for i, f := range o.failing {
		if f.id == e.ID {
			return i > 0 || now.Before(f.next)
		}
	}
	if !e.NextAttempt.IsZero() && now.Before(e.NextAttempt) {
		o.aside[e.ID] = asideEntry{next: e.NextAttempt} // a back-off recorded by an earlier run
		return true
	}
	return false
}

// firstPassedOver returns the least ID of the entries aside or failing, or the
// greatest int64 when there are none.
func (o *outbox) firstPassedOver() int64 {
	first := int64(math.MaxInt64)
	for id := range o.aside {
		first = min(first, id)
	}
	for _, f := range o.failing {
		first = min(first, f.id)
	}
	return first
}

// restart waits out the failing head's back-off and returns the read position from
// which the head is read again.
func (o *outbox) restart(ctx context.Context) int64 {
	head := o.failing[0]
	o.g.sleep(ctx, head.next.Sub(o.g.clock.Now()))
	return head.id - 1
}

func (o *outbox) isFailing(id int64) bool {
	return slices.ContainsFunc(o.failing, func(f failedEntry) bool { return f.id == id })
}

// passOver ends a failure streak after an entry went through that was not the head: the
// failed entries are to be tried again at once, each for one more attempt before it
// moves aside. It returns the read position from which they are read.
func (o *outbox) passOver() int64 {
	from := o.failing[0].id
	for _, f := range o.failing {
		o.aside[f.id] = asideEntry{recheck: true}
		from = min(from, f.id)
	}
	o.failing = o.failing[:0]
	return from - 1
}

// headBack ends a failure streak after the head went through: the destination is back,
// and the entries that failed after the head are tried next, in order.
func (o *outbox) headBack() {
	for _, f := range o.failing[1:] {
		o.aside[f.id] = asideEntry{} // due now (read back with a back-off recorded, it would wait)
	}
	o.failing = o.failing[:0]
}

// forget drops a settled entry from the failure bookkeeping.
func (o *outbox) forget(id int64) {
	delete(o.aside, id)
	delete(o.parts, id)
	o.failing = slices.DeleteFunc(o.failing, func(f failedEntry) bool { return f.id == id })
}

// failed records a failed attempt of entry id that will be retried at next: aside
// when it was being rechecked after a success, else in the failure streak.
func (o *outbox) failed(id int64, attempts int, next time.Time) {
	if a, ok := o.aside[id]; ok && a.recheck {
		o.aside[id] = asideEntry{next: next}
		o.log.Warn("delivery moved aside: it fails while others go through", "entry", id, "attempts", attempts, "next", next)
		return
	}
	delete(o.aside, id)
	for i := range o.failing {
		if o.failing[i].id == id {
			o.failing[i].attempts, o.failing[i].next = attempts, next
			return
		}
	}
	o.failing = append(o.failing, failedEntry{id: id, attempts: attempts, next: next})
}

// statusParallel is how many Status deliveries are sealed at once (statusDest).
var statusParallel = max(4, 2*runtime.GOMAXPROCS(0))

// parallelizable returns how many of the first entries may be attempted together: first
// attempts, up to the destination's parallel(), unless the queue is over its limit or
// failing.
func (o *outbox) parallelizable(entries []records.OutboxEntry) int {
	p := o.to.parallel()
	if p <= 1 || o.depth.Load() > int64(o.g.cfg.QueueLimit) || len(o.failing) > 0 {
		return 1
	}
	n := 0
	for n < len(entries) && n < p && entries[n].Attempts == 0 && entries[n].NextAttempt.IsZero() &&
		!o.waiting(entries[n]) {
		n++
	}
	return n
}

// processParallel attempts entries (first attempts, Status) at once and then settles
// them, as process does one by one. It returns 0 when none failed (or ctx ended), -1
// when every one failed (the destination is failing: o.failing holds them), else the ID
// of the first that failed (the others went through: the failed ones are tried again
// at once, as after a probe).
func (o *outbox) processParallel(ctx context.Context, entries []records.OutboxEntry) int64 {
	type result struct {
		ev  bridges.Event
		ids []string
		err error
		bad error // undecodable
	}
	res := make([]result, len(entries))
	var wg sync.WaitGroup
	for j := range entries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &res[j]
			if r.ev, r.bad = decodeBody(entries[j].Body); r.bad != nil {
				return
			}
			actx, cancel := context.WithTimeout(ctx, o.g.cfg.AttemptTimeout)
			r.ids, r.err = o.to.deliver(actx, o, entries[j], &r.ev)
			cancel()
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		// Stopping: what went out is still recorded (markLoop outlives the outboxes),
		// so that it is not delivered again after a restart; the rest waits.
		for j, e := range entries {
			if res[j].bad == nil && res[j].err == nil {
				o.delivered(ctx, e, res[j].ids)
			}
		}
		return 0
	}
	anyOK := false
	for j, e := range entries {
		r := res[j]
		switch {
		case r.bad != nil:
			o.fail(ctx, e, nil, e.Attempts, "undecodable ledger entry: "+r.bad.Error())
		case r.err == nil:
			anyOK = true
			o.delivered(ctx, e, r.ids)
		case bridges.IsPermanent(r.err) || o.g.cfg.MaxAttempts <= 1:
			o.fail(ctx, e, &r.ev, 1, r.err.Error())
		default:
			o.retryLater(ctx, e, &r.ev, 1, r.err)
		}
	}
	switch {
	case len(o.failing) == 0:
		return 0
	case anyOK:
		return o.passOver() + 1
	case len(o.failing) == 1: // the others ended failed for good: probe on
		return 0
	}
	return -1
}

// process attempts entry e once and takes it to an end state (sent or ended), or
// records the failed attempt (retry).
func (o *outbox) process(ctx context.Context, e records.OutboxEntry) outcome {
	g := o.g
	if over := o.depth.Load() - int64(g.cfg.QueueLimit); over > 0 {
		if !o.fail(ctx, e, nil, e.Attempts, "queue overflow: more than "+fmt.Sprint(g.cfg.QueueLimit)+" pending") {
			return stopped
		}
		return ended
	}
	if !o.to.ready(ctx) {
		return stopped
	}
	ev, err := decodeBody(e.Body)
	if err != nil {
		if !o.fail(ctx, e, nil, e.Attempts, "undecodable ledger entry: "+err.Error()) {
			return stopped
		}
		return ended
	}
	actx, cancel := context.WithTimeout(ctx, g.cfg.AttemptTimeout)
	ids, err := o.to.deliver(actx, o, e, &ev)
	cancel()
	if err == nil {
		// Recorded even when stopping (markLoop outlives the outboxes), so that it is
		// not delivered again after a restart.
		if len(o.failing) > 0 && o.failing[0].id == e.ID {
			o.headBack()
		}
		if !o.delivered(ctx, e, ids) {
			return stopped
		}
		return sent
	}
	if ctx.Err() != nil {
		return stopped
	}
	attempts := e.Attempts + 1
	for _, f := range o.failing { // attempts since the entry was read
		if f.id == e.ID {
			attempts = max(attempts, f.attempts+1)
		}
	}
	if bridges.IsPermanent(err) || attempts >= g.cfg.MaxAttempts {
		if !o.fail(ctx, e, &ev, attempts, err.Error()) {
			return stopped
		}
		return ended
	}
	o.retryLater(ctx, e, &ev, attempts, err)
	return retry
}

// retryLater records the failed attempt number attempts of e and its back-off.
func (o *outbox) retryLater(ctx context.Context, e records.OutboxEntry, ev *bridges.Event, attempts int, err error) {
	g := o.g
	b := backoff{min: g.cfg.RetryMin, max: g.cfg.RetryMax}
	var wait time.Duration
	for range attempts {
		wait = b.next()
	}
	g.m.retries.WithLabelValues(o.net).Inc()
	o.log.Warn("delivery failed; will retry", "id", ev.Origin.ID, "attempt", attempts, "in", wait, "err", err)
	next := g.clock.Now().Add(wait)
	for ctx.Err() == nil {
		if err := g.ledger.MarkRetry(ctx, e.ID, attempts, next, err.Error()); err == nil {
			break
		}
		g.sleep(ctx, time.Second)
	}
	o.failed(e.ID, attempts, next)
}

// delivered hands the completed entry to the mark writer and moves on: the queue does
// not wait for the disk. It returns false when ctx has ended (the outbox stops). A mark lost in a crash means one more delivery with the same
// idempotency key after restart.
func (o *outbox) delivered(ctx context.Context, e records.OutboxEntry, ids []string) bool {
	o.forget(e.ID)
	o.marks.Add(1)
	o.marked.add()
	o.unmarked.add(e.ID)
	r := &markReq{d: records.Delivery{EntryID: e.ID, IDs: ids, At: o.g.clock.Now()}, ob: o, wg: &o.marks, sent: e.Received}
	if d := o.to.settle(); d > 0 {
		r.notBefore = o.g.clock.Now().Add(d)
	}
	// No ctx case: Run stops markLoop only after every outbox returned, so this send
	// always finds its reader, and a delivery that went out is never left unrecorded.
	o.g.markC <- r
	return ctx.Err() == nil
}

// fail ends entry e as failed: recorded in the ledger, logged, counted, and, when the
// event ev (nil if unknown) came from a connector, reported in its origin channel.
func (o *outbox) fail(ctx context.Context, e records.OutboxEntry, ev *bridges.Event, attempts int, reason string) bool {
	g := o.g
	for {
		err := g.ledger.MarkFailed(ctx, e.ID, attempts, reason, g.clock.Now())
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return false
		}
		o.log.Error("record failure failed; retrying", "entry", e.ID, "err", err)
		g.sleep(ctx, time.Second)
	}
	o.forget(e.ID)
	o.done()
	g.m.failures.WithLabelValues(o.net).Inc()
	o.log.Error("delivery failed for good", "entry", e.ID, "attempts", attempts, "reason", reason)
	if ev != nil {
		o.g.noticeFailure(ctx, e.ID, ev, o.dest)
	}
	return true
}

// partKey is the idempotency key of part i (from 0) of a split message: the entry's key
// for the first, so that an unsplit message keeps it, and a key derived from it (same
// shape: 32 hex digits) for the others.
func partKey(key string, i int) string {
	if i == 0 {
		return key
	}
	h := sha256.Sum256([]byte(key + "/part/" + strconv.Itoa(i)))
	return hex.EncodeToString(h[:16])
}

// mapped returns the ID in this destination of the message id (of ev's origin
// network), or "" when none is known.
func (o *outbox) mapped(ctx context.Context, ev *bridges.Event, id bridges.RemoteMsgID) (bridges.RemoteMsgID, error) {
	ids, err := o.mappedIDs(ctx, ev, id)
	if err != nil || len(ids) == 0 {
		return "", err
	}
	return bridges.RemoteMsgID(ids[0]), nil
}

// mappedIDs returns the IDs in this destination of the message id (of ev's origin
// network), oldest first.
func (o *outbox) mappedIDs(ctx context.Context, ev *bridges.Event, id bridges.RemoteMsgID) ([]string, error) {
	ids, err := o.g.ledger.MappedIDs(ctx, string(ev.Origin.Channel), string(id), string(o.dest))
	if err == nil && len(ids) == 0 {
		// The answered message may be one just delivered, its mark still on the way to
		// the ledger: wait for the marks and look again.
		o.awaitMarks(ctx, ev.Origin.Channel)
		ids, err = o.g.ledger.MappedIDs(ctx, string(ev.Origin.Channel), string(id), string(o.dest))
	}
	if err != nil {
		return nil, fmt.Errorf("map %s: %w", id, err)
	}
	return ids, nil
}

// awaitMarks waits until the deliveries marked so far by this outbox and by the outbox
// of channel src (where the message's ID there came from, when it is a copy) are
// written: a message just delivered is then found in the ledger. Used when a reply or
// a target is not found.
func (o *outbox) awaitMarks(ctx context.Context, src bridges.ChannelID) {
	o.marks.Wait()
	if so := o.g.outboxOf(src); so != nil && so != o {
		so.marked.await(ctx)
	}
}

// markCounter counts one outbox's marks handed to markLoop and those written, for
// goroutines other than the outbox's to wait for the ones handed over so far.
type markCounter struct {
	mu               sync.Mutex
	queued, finished uint64
	progress         chan struct{} // closed and replaced when finished moves
}

func (m *markCounter) add() {
	m.mu.Lock()
	m.queued++
	m.mu.Unlock()
}

func (m *markCounter) done() {
	m.mu.Lock()
	m.finished++
	if m.progress != nil {
		close(m.progress)
		m.progress = nil
	}
	m.mu.Unlock()
}

// await waits until as many marks are finished as were queued when it was called
// (marks of one outbox finish in about the order they were queued), or ctx ends.
func (m *markCounter) await(ctx context.Context) {
	m.mu.Lock()
	target := m.queued
	for m.finished < target {
		if m.progress == nil {
			m.progress = make(chan struct{})
		}
		ch := m.progress
		m.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
		m.mu.Lock()
	}
	m.mu.Unlock()
}

// unmarkedSet is the set of entries delivered whose marks are not written yet. The
// outbox adds to it; markLoop reports each mark written (written), and the outbox
// removes those only when it is about to read the ledger (prune): an entry whose mark
// was written while a read was under way may have been read as pending, and must still
// be in the set when that page is filtered.
type unmarkedSet struct {
	mu   sync.Mutex
	ids  map[int64]struct{}
	done []int64 // written since the last prune
}

func (u *unmarkedSet) add(id int64) {
	u.mu.Lock()
	if u.ids == nil {
		u.ids = map[int64]struct{}{}
	}
	u.ids[id] = struct{}{}
	u.mu.Unlock()
}

// written records that id's mark is in the ledger (or was given up at shutdown).
func (u *unmarkedSet) written(id int64) {
	u.mu.Lock()
	u.done = append(u.done, id)
	u.mu.Unlock()
}

// prune forgets the entries reported written so far.
func (u *unmarkedSet) prune() {
	u.mu.Lock()
	for _, id := range u.done {
		delete(u.ids, id)
	}
	u.done = u.done[:0]
	u.mu.Unlock()
}

func (u *unmarkedSet) has(id int64) bool {
	u.mu.Lock()
	_, ok := u.ids[id]
	u.mu.Unlock()
	return ok
}
