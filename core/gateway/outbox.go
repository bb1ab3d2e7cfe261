package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/core/status"
	"github.com/statusgate/statusgate/identity"
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

// outbox delivers one destination's entries, in order, one at a time. Its goroutine
// is owned by Gateway.Run.
type outbox struct {
	g     *Gateway
	dest  bridges.ChannelID
	net   string
	rt    *route
	log   *slog.Logger
	kick  chan struct{} // capacity 1: "there may be new entries"
	depth atomic.Int64
	marks sync.WaitGroup // deliveries handed to markLoop, not yet written
	// unmarked holds the entry IDs of those deliveries (int64 → struct{}), so that a
	// re-read of the outbox does not deliver them again.
	unmarked sync.Map
}

func (g *Gateway) newOutbox(dest bridges.ChannelID, rt *route) *outbox {
	return &outbox{g: g, dest: dest, net: dest.Network(), rt: rt, kick: make(chan struct{}, 1),
		log: g.log.With("dest", string(dest))}
}

// added is called after entries for this destination were persisted.
func (o *outbox) added() {
	d := o.depth.Add(1)
	o.g.m.depth.WithLabelValues(string(o.dest)).Set(float64(d))
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
}

// run delivers entries until ctx ends. Ledger errors are retried with back-off.
func (o *outbox) run(ctx context.Context) {
	var after int64
	storeBack := backoff{min: 100 * time.Millisecond, max: 10 * time.Second}
	for ctx.Err() == nil {
		entries, err := o.g.ledger.PendingEntries(ctx, string(o.dest), after, outboxBatch)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			wait := storeBack.next()
			o.log.Error("read outbox failed; retrying", "err", err, "in", wait)
			sleep(ctx, wait)
			continue
		}
		storeBack = backoff{min: storeBack.min, max: storeBack.max}
		// Entries delivered whose marks are not written yet are still pending in the
		// ledger: skip them.
		entries = slices.DeleteFunc(entries, func(e records.OutboxEntry) bool {
			_, unmarked := o.unmarked.Load(e.ID)
			return unmarked
		})
		if len(entries) == 0 {
			// Rescan from the start next time (nothing is pending before), once every
			// delivery is recorded, so that none is read back as pending.
			o.marks.Wait()
			after = 0
			select {
			case <-ctx.Done():
				return
			case <-o.kick:
			case <-time.After(5 * time.Second): // entries added by another process sharing the store
			}
			continue
		}
		for i := 0; i < len(entries); {
			n := o.parallelizable(entries[i:])
			if n > 1 {
				done := o.processParallel(ctx, entries[i:i+n])
				if done > 0 {
					after = entries[i+done-1].ID
				}
				if done < n {
					break // retry later, from the first not done
				}
				i += n
				continue
			}
			if !o.process(ctx, entries[i]) {
				break // retry later; keep the order: nothing after it goes first
			}
			after = entries[i].ID
			i++
		}
	}
}

// statusParallel is how many Status deliveries are sealed at once. Status needs no
// delivery order (clients order by the clock fixed at ingest), and sealing (signing,
// encryption, proof of work) is CPU work that one goroutine would serialise.
var statusParallel = max(4, 2*runtime.GOMAXPROCS(0))

// parallelizable returns how many of the first entries may be attempted together: for
// the Status destination, first attempts of a full queue's worth, else 1.
func (o *outbox) parallelizable(entries []records.OutboxEntry) int {
	if o.net != StatusNetwork || o.depth.Load() > int64(o.g.cfg.QueueLimit) {
		return 1
	}
	n := 0
	for n < len(entries) && n < statusParallel && entries[n].Attempts == 0 && entries[n].NextAttempt.IsZero() {
		n++
	}
	return n
}

// processParallel attempts entries (first attempts, Status) at once and then settles
// them in order, as process does one by one. It returns how many, from the first, are
// settled; a failed attempt and everything after it that also failed are left for the
// next round (those after it that succeeded are settled, out of order, which Status
// does not mind).
func (o *outbox) processParallel(ctx context.Context, entries []records.OutboxEntry) int {
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
			r.ids, r.err = o.deliver(actx, entries[j], &r.ev)
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
	settled := 0
	failedAt := -1
	for j, e := range entries {
		r := res[j]
		switch {
		case r.bad != nil:
			o.fail(ctx, e, nil, e.Attempts, "undecodable ledger entry: "+r.bad.Error())
		case r.err == nil:
			o.delivered(ctx, e, r.ids)
		case bridges.IsPermanent(r.err) || o.g.cfg.MaxAttempts <= 1:
			o.fail(ctx, e, &r.ev, 1, r.err.Error())
		default:
			o.g.m.retries.WithLabelValues(o.net).Inc()
			o.log.Warn("delivery failed; will retry", "id", r.ev.Origin.ID, "attempt", 1, "err", r.err)
			next := o.g.cfg.Clock().Add(o.g.cfg.RetryMin)
			if err := o.g.ledger.MarkRetry(ctx, e.ID, 1, next, r.err.Error()); err != nil {
				o.log.Error("record retry failed", "entry", e.ID, "err", err)
			}
			if failedAt < 0 {
				failedAt = j
			}
			continue
		}
		if failedAt < 0 {
			settled = j + 1
		}
	}
	if failedAt >= 0 {
		sleep(ctx, o.g.cfg.RetryMin)
	}
	return settled
}

// process takes entry e to an end state (delivered or failed) and returns true, or
// records a failed attempt, waits out the back-off and returns false.
func (o *outbox) process(ctx context.Context, e records.OutboxEntry) bool {
	g := o.g
	if over := o.depth.Load() - int64(g.cfg.QueueLimit); over > 0 {
		return o.fail(ctx, e, nil, e.Attempts, "queue overflow: more than "+fmt.Sprint(g.cfg.QueueLimit)+" pending")
	}
	if wait := time.Until(e.NextAttempt); !e.NextAttempt.IsZero() && wait > 0 {
		sleep(ctx, wait)
		return false
	}
	if !o.waitConnected(ctx) {
		return false
	}
	ev, err := decodeBody(e.Body)
	if err != nil {
		return o.fail(ctx, e, nil, e.Attempts, "undecodable ledger entry: "+err.Error())
	}
	actx, cancel := context.WithTimeout(ctx, g.cfg.AttemptTimeout)
	ids, err := o.deliver(actx, e, &ev)
	cancel()
	if err == nil {
		// Recorded even when stopping (markLoop outlives the outboxes), so that it is
		// not delivered again after a restart.
		return o.delivered(ctx, e, ids)
	}
	if ctx.Err() != nil {
		return false
	}
	attempts := e.Attempts + 1
	if bridges.IsPermanent(err) || attempts >= g.cfg.MaxAttempts {
		return o.fail(ctx, e, &ev, attempts, err.Error())
	}
	b := backoff{min: g.cfg.RetryMin, max: g.cfg.RetryMax}
	var wait time.Duration
	for range attempts {
		wait = b.next()
	}
	g.m.retries.WithLabelValues(o.net).Inc()
	o.log.Warn("delivery failed; will retry", "id", ev.Origin.ID, "attempt", attempts, "in", wait, "err", err)
	next := g.cfg.Clock().Add(wait)
	for ctx.Err() == nil {
		if err := g.ledger.MarkRetry(ctx, e.ID, attempts, next, err.Error()); err == nil {
			break
		}
		sleep(ctx, time.Second)
	}
	sleep(ctx, wait)
	return false
}

// waitConnected waits until the destination can take deliveries: the Status chat is
// always ready; a connector must report StateConnected. Attempts are not spent on a
// network that is down.
func (o *outbox) waitConnected(ctx context.Context) bool {
	if o.net == StatusNetwork {
		return true
	}
	for {
		o.g.mu.Lock()
		st := o.g.states[o.net].State
		o.g.mu.Unlock()
		if st == bridges.StateConnected {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// delivered hands the completed entry to the mark writer and moves on: the queue does
// not wait for the disk. It returns false when ctx has ended (the outbox stops). A mark lost in a crash means one more delivery with the same
// idempotency key after restart.
func (o *outbox) delivered(ctx context.Context, e records.OutboxEntry, ids []string) bool {
	o.marks.Add(1)
	o.unmarked.Store(e.ID, struct{}{})
	r := &markReq{d: records.Delivery{EntryID: e.ID, IDs: ids, At: o.g.cfg.Clock()}, ob: o, wg: &o.marks, sent: e.Received}
	if o.net == StatusNetwork {
		r.notBefore = time.Now().Add(statusSettle)
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
		err := g.ledger.MarkFailed(ctx, e.ID, attempts, reason, g.cfg.Clock())
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return false
		}
		o.log.Error("record failure failed; retrying", "entry", e.ID, "err", err)
		sleep(ctx, time.Second)
	}
	o.done()
	g.m.failures.WithLabelValues(o.net).Inc()
	o.log.Error("delivery failed for good", "entry", e.ID, "attempts", attempts, "reason", reason)
	if ev != nil {
		o.g.notifyFailure(ctx, e.ID, ev, o.dest)
	}
	return true
}

// deliver makes one attempt and returns the destination-side IDs of what was posted.
func (o *outbox) deliver(ctx context.Context, e records.OutboxEntry, ev *bridges.Event) ([]string, error) {
	if o.net == StatusNetwork {
		return o.toStatus(ctx, e, ev)
	}
	c := o.g.conns[o.net]
	out := bridges.Outbound{Event: *ev, Channel: o.dest, Key: e.Key}
	var err error
	if ev.ReplyTo != "" {
		if out.ReplyTo, err = o.mapped(ctx, ev, ev.ReplyTo); err != nil {
			return nil, err
		}
	}
	if ev.Target != "" {
		if out.Target, err = o.mapped(ctx, ev, ev.Target); err != nil {
			return nil, err
		}
	}
	var r bridges.Receipt
	switch ev.Kind {
	case bridges.KindMessage, bridges.KindAction, bridges.KindNotice:
		r, err = c.Send(ctx, out)
	case bridges.KindEdit:
		if ed, ok := c.(bridges.Editor); ok && out.Target != "" {
			r, err = ed.Edit(ctx, out)
			if !errors.Is(err, bridges.ErrUnsupported) {
				break
			}
		}
		out.Target = ""
		out.Event.Kind, out.Event.Target = bridges.KindMessage, ""
		r, err = c.Send(ctx, out)
	case bridges.KindDelete:
		if rd, ok := c.(bridges.Redactor); ok && out.Target != "" {
			err = rd.Redact(ctx, out)
		} else {
			o.g.m.dropped.WithLabelValues(dropKind).Inc()
		}
	case bridges.KindReaction:
		if re, ok := c.(bridges.Reactor); ok && out.Target != "" {
			r, err = re.React(ctx, out)
		} else {
			o.g.m.dropped.WithLabelValues(dropKind).Inc()
		}
	case bridges.KindJoin, bridges.KindPart:
		if mo, ok := c.(bridges.Moderator); ok {
			err = mo.Membership(ctx, out)
		} else {
			o.g.m.dropped.WithLabelValues(dropKind).Inc()
		}
	}
	if errors.Is(err, bridges.ErrUnsupported) {
		o.g.m.dropped.WithLabelValues(dropKind).Inc()
		return nil, nil // recorded as done: the network cannot show it
	}
	if err != nil {
		return nil, err
	}
	if r.ID != "" {
		return []string{string(r.ID)}, nil
	}
	return nil, nil
}

// mapped returns the ID in this destination of the message id (of ev's origin network).
func (o *outbox) mapped(ctx context.Context, ev *bridges.Event, id bridges.RemoteMsgID) (bridges.RemoteMsgID, error) {
	ids, err := o.g.ledger.MappedIDs(ctx, string(ev.Origin.Channel), string(id), string(o.dest))
	if err == nil && len(ids) == 0 {
		// The answered message may be one this outbox just delivered, its mark still on
		// the way to the ledger: wait for this outbox's marks and look again.
		o.marks.Wait()
		ids, err = o.g.ledger.MappedIDs(ctx, string(ev.Origin.Channel), string(id), string(o.dest))
	}
	if err != nil {
		return "", fmt.Errorf("map %s: %w", id, err)
	}
	if len(ids) == 0 {
		return "", nil
	}
	return bridges.RemoteMsgID(ids[0]), nil
}

// mappedStatus returns the real Status message id ("0x…") of the message id (of ev's
// origin network), or "" when none is known: the ledger also maps twin IDs, which are
// no message ids.
func (o *outbox) mappedStatus(ctx context.Context, ev *bridges.Event, id bridges.RemoteMsgID) (string, error) {
	ids, err := o.g.ledger.MappedIDs(ctx, string(ev.Origin.Channel), string(id), string(o.dest))
	if err == nil && len(ids) == 0 {
		o.marks.Wait()
		ids, err = o.g.ledger.MappedIDs(ctx, string(ev.Origin.Channel), string(id), string(o.dest))
	}
	if err != nil {
		return "", fmt.Errorf("map %s: %w", id, err)
	}
	for _, m := range ids {
		if local := bridges.RemoteMsgID(m).Local(); !strings.HasPrefix(local, "twin-") {
			return local, nil
		}
	}
	return "", nil
}

// toStatus posts ev into the route's chat as the sender's puppet, with the clock fixed
// at ingest so that a retry sends the same message ids.
func (o *outbox) toStatus(ctx context.Context, e records.OutboxEntry, ev *bridges.Event) ([]string, error) {
	g := o.g
	ch := o.rt.statusChat()
	if ch == nil {
		return nil, fmt.Errorf("%w: chat %q not joined", bridges.ErrTransient, o.rt.Chat)
	}
	account := g.cfg.Accounts[ev.Origin.Network]
	if account == "" {
		account = ev.Origin.Network
	}
	pid := identity.PuppetID{Network: ev.Origin.Network, Account: account, User: ev.Sender.ID.Local()}
	key, rec, err := g.puppets.Key(ctx, pid, ev.Sender.Name)
	if err != nil {
		if errors.Is(err, identity.ErrInvalidPuppetID) {
			return nil, bridges.Permanent(err)
		}
		return nil, err
	}
	g.markOurs(rec.ChatKey)
	msg := status.Outgoing{Text: g.statusText(ev), Clock: e.Clock, Timestamp: ev.Time}
	if ev.ReplyTo != "" {
		id, err := o.mappedStatus(ctx, ev, ev.ReplyTo)
		if err != nil {
			return nil, err
		}
		msg.ResponseTo = id
	}
	start := time.Now()
	sent, err := ch.SendMessage(ctx, msg, key)
	g.m.sendTime.Observe(time.Since(start).Seconds())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", bridges.ErrTransient, err)
	}
	ids := make([]string, 0, len(sent)+1)
	for _, id := range sent {
		ids = append(ids, StatusNetwork+":"+id.String())
	}
	if msg.Clock != 0 {
		// Mapped too: the echo of this message is then a known origin (a duplicate),
		// and a reply naming it resolves through the chat's twin index.
		if twin, err := twinOrigin(msg.TwinID(&key.PublicKey).String()); err == nil {
			ids = append(ids, string(twin))
		}
	}
	return ids, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
