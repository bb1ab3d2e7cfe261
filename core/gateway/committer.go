package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/records"
)

// Group commit. One commit costs a disk sync (SQLite with synchronous=FULL, or a
// PostgreSQL round trip and WAL flush); committing each event and each delivery mark
// alone caps the gateway near 1,000 events a second. So two goroutines owned by Run
// take requests off bounded queues and write whatever is waiting in one transaction:
// ingestLoop for new events, markLoop for completed deliveries. Overflow policy of
// both queues: block (the caller waits; Host.Deliver is allowed to).

const (
	commitQueue = 1024 // requests waiting for the writer
	commitBatch = 256  // requests written in one transaction at most
)

// ingestReq is one event to persist.
type ingestReq struct {
	in    records.Ingest
	rt    *route
	dests []bridges.ChannelID
	// aliases are further IDs of the event to map once it is persisted (a Status
	// message's real id, beside its twin origin ID).
	aliases []records.Alias
	// done receives the outcome once the event is persisted (or ctx ended); nil for
	// callers that do not wait (the Status reader pipelines its messages).
	done chan error
}

// release ends the request: its entry is written (or given up) and leaves the
// outbox's unmarked set.
func (r *markReq) release() {
	r.ob.unmarked.written(r.d.EntryID)
	r.ob.marked.done()
	r.wg.Done()
}

// markReq is one completed delivery to record.
type markReq struct {
	d    records.Delivery
	ob   *outbox
	wg   *sync.WaitGroup // the outbox's in-flight marks
	sent time.Time       // when the event was received, for the latency metric
	// notBefore holds the mark back until then (statusSettle, Status deliveries).
	notBefore time.Time
}

func (g *Gateway) ingestLoop(ctx context.Context) {
	batch := make([]*ingestReq, 0, commitBatch)
	ins := make([]records.Ingest, 0, commitBatch)
	for {
		batch, ins = batch[:0], ins[:0]
		select {
		case <-ctx.Done():
			// Stopping: nothing adds any more (Run stops the writers last); write what is
			// queued, with a bounded grace period, so no accepted event is lost.
			g.flushIngest()
			return
		case r := <-g.ingestC:
			batch = append(batch, r)
		}
	more:
		for len(batch) < commitBatch {
			select {
			case r := <-g.ingestC:
				batch = append(batch, r)
			default:
				break more
			}
		}
		if !g.writeIngest(ctx, batch, ins) {
			g.flushIngest()
			return
		}
	}
}

// flushIngest writes every queued request within a grace period; what cannot be
// written is answered with an error (its connector re-delivers it after restart).
func (g *Gateway) flushIngest() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var batch []*ingestReq
	var ins []records.Ingest
	for {
		batch, ins = batch[:0], ins[:0]
	more:
		for len(batch) < commitBatch {
			select {
			case r := <-g.ingestC:
				batch = append(batch, r)
			default:
				break more
			}
		}
		if len(batch) == 0 {
			return
		}
		if !g.writeIngest(ctx, batch, ins) {
			g.drainIngest(ctx.Err())
			return
		}
	}
}

// writeIngest persists batch, retrying store errors with back-off while ctx lasts,
// and answers every request. It returns false when ctx ended first.
func (g *Gateway) writeIngest(ctx context.Context, batch []*ingestReq, ins []records.Ingest) bool {
	for _, r := range batch {
		ins = append(ins, r.in)
	}
	var res []records.Ingested
	back := backoff{min: 50 * time.Millisecond, max: 5 * time.Second}
	for {
		var err error
		res, err = g.ledger.IngestEvents(ctx, ins)
		if err == nil && len(res) == len(ins) {
			break
		}
		if ctx.Err() != nil {
			for _, r := range batch {
				reply(r.done, ctx.Err())
			}
			g.log.Error("events not persisted at shutdown", "events", len(batch), "err", err)
			return false
		}
		if err == nil {
			err = fmt.Errorf("ledger returned %d results for %d events", len(res), len(ins))
		}
		wait := back.next()
		g.log.Error("persist events failed; retrying", "events", len(ins), "err", err, "in", wait)
		g.sleep(ctx, wait)
	}
	var aliases []records.Alias
	for i, r := range batch {
		if res[i].Inserted {
			aliases = append(aliases, r.aliases...)
		}
	}
	if len(aliases) > 0 {
		// Before the outboxes hear of the events, so that a reply looked up while
		// delivering finds them. A failure costs reply links only: logged, not retried.
		if err := g.ledger.AddAliases(ctx, aliases); err != nil {
			g.log.Warn("message aliases not recorded; replies to them will not link", "n", len(aliases), "err", err)
		}
	}
	for i, r := range batch {
		if !res[i].Inserted {
			g.m.dropped.WithLabelValues(dropDuplicate).Inc()
		} else {
			g.m.in.WithLabelValues(r.rt.Chat, r.in.Event.Network).Inc()
			for _, d := range r.dests {
				if ob := g.outboxOf(d); ob != nil { // nil: its route was removed meanwhile
					ob.added()
				}
			}
		}
		reply(r.done, nil)
	}
	return true
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// drainIngest answers every queued request with err (the gateway is stopping).
func (g *Gateway) drainIngest(err error) {
	for {
		select {
		case r := <-g.ingestC:
			reply(r.done, err)
		default:
			return
		}
	}
}

func reply(done chan error, err error) {
	if done != nil {
		done <- err // buffered 1; each request is answered once
	}
}

func (g *Gateway) markLoop(ctx context.Context) {
	batch := make([]*markReq, 0, commitBatch)
	ds := make([]records.Delivery, 0, commitBatch)
	// held are marks whose notBefore has not come, in arrival order (notBefore is
	// arrival plus a constant, so the head is always the first due). Holding them here,
	// not sleeping, keeps every other mark flowing.
	var held []*markReq
	var timer Timer
	take := func(r *markReq, now time.Time) {
		if r.notBefore.After(now) {
			held = append(held, r)
		} else {
			batch = append(batch, r)
		}
	}
	for {
		batch, ds = batch[:0], ds[:0]
		var due <-chan time.Time
		if len(held) > 0 {
			timer = g.clock.NewTimer(held[0].notBefore.Sub(g.clock.Now()))
			due = timer.C()
		}
		now := g.clock.Now()
		select {
		case <-ctx.Done():
			g.flushMarks(held)
			return
		case r := <-g.markC:
			now = g.clock.Now()
			take(r, now)
		case <-due:
			// The head's wait is over on the clock's own timer, whatever Now says.
			now = later(g.clock.Now(), held[0].notBefore)
		}
		if timer != nil {
			timer.Stop()
			timer = nil
		}
		for len(held) > 0 && !held[0].notBefore.After(now) && len(batch) < commitBatch {
			batch = append(batch, held[0])
			held = held[1:]
		}
	more:
		for len(batch) < commitBatch {
			select {
			case r := <-g.markC:
				take(r, now)
			default:
				break more
			}
		}
		if len(batch) == 0 {
			continue
		}
		if rest := g.writeMarks(ctx, batch, ds); rest != nil {
			// Stopping while the batch was written: it is not lost, the flush writes it
			// with the others (a mark dropped here meant one more delivery after restart).
			g.flushMarks(append(rest, held...))
			return
		}
	}
}

// flushMarks writes the held and the queued marks within a grace period, held ones
// once due: Run stops the node only after the gateway, so their envelopes still get
// their transmission cycles. Marks not written are delivered again after a restart,
// with the same idempotency key: harmless by construction.
func (g *Gateway) flushMarks(held []*markReq) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var batch []*markReq
	var ds []records.Delivery
	var last time.Time
	for _, r := range held {
		last = r.notBefore
	}
	for {
		select {
		case r := <-g.markC:
			held = append(held, r)
			if r.notBefore.After(last) {
				last = r.notBefore
			}
			continue
		default:
		}
		break
	}
	g.sleep(ctx, last.Sub(g.clock.Now()))
	for len(held) > 0 {
		n := min(len(held), commitBatch)
		batch, ds = append(batch[:0], held[:n]...), ds[:0]
		held = held[n:]
		if rest := g.writeMarks(ctx, batch, ds); rest != nil {
			for _, r := range append(rest, held...) {
				r.release()
			}
			g.drainMarks()
			return
		}
	}
}

// writeMarks records batch, retrying store errors while ctx lasts, and releases each
// request it wrote (or gave up as unknown). It returns nil, or, when ctx ended first,
// the requests not written, still held: the caller writes or releases them.
func (g *Gateway) writeMarks(ctx context.Context, batch []*markReq, ds []records.Delivery) []*markReq {
	for _, r := range batch {
		ds = append(ds, r.d)
	}
	back := backoff{min: 50 * time.Millisecond, max: 5 * time.Second}
	var giveUp time.Time // while stopping: when to stop retrying
	for {
		err := g.ledger.MarkDeliveredBatch(ctx, ds)
		if err == nil {
			break
		}
		if errors.Is(err, records.ErrUnknownEntry) {
			// Cannot happen for entries read from the ledger; if it does, the batch is
			// written one by one and the unknown mark alone is given up (logged).
			if len(batch) == 1 {
				g.log.Error("delivery of an unknown outbox entry not recorded", "entry", batch[0].d.EntryID, "err", err)
				batch[0].release()
				return nil
			}
			for i, r := range batch {
				if rest := g.writeMarks(ctx, []*markReq{r}, nil); rest != nil {
					return append(rest, batch[i+1:]...)
				}
			}
			return nil
		}
		if ctx.Err() != nil {
			return batch
		}
		// Stopping with a store that refuses the marks (full disk): the outboxes wait
		// for their marks before they return, so retrying for ever would hang the stop.
		// Past markGrace they are released unrecorded: delivered again after a restart,
		// with the same idempotency keys (harmless by construction, as in flushMarks).
		select {
		case <-g.stopping:
			if giveUp.IsZero() {
				giveUp = g.clock.Now().Add(markGrace)
			} else if g.clock.Now().After(giveUp) {
				g.log.Error("deliveries not recorded at shutdown; they will be made again after a restart",
					"entries", len(batch), "err", err)
				for _, r := range batch {
					r.release()
				}
				return nil
			}
		default:
		}
		wait := back.next()
		g.log.Error("record deliveries failed; retrying", "entries", len(ds), "err", err, "in", wait)
		g.sleep(ctx, wait)
	}
	now := g.clock.Now()
	for _, r := range batch {
		r.ob.done()
		g.m.out.WithLabelValues(r.ob.rt.Chat, r.ob.net).Inc()
		g.m.latency.WithLabelValues(r.ob.net).Observe(now.Sub(r.sent).Seconds())
		r.release()
	}
	return nil
}

// markGrace is how long the mark writer keeps retrying a refused write once the
// gateway is stopping.
const markGrace = 5 * time.Second

func (g *Gateway) drainMarks() {
	for {
		select {
		case r := <-g.markC:
			r.release()
		default:
			return
		}
	}
}
