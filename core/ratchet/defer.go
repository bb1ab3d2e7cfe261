package ratchet

import (
	"container/list"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/crypto"
	"google.golang.org/protobuf/proto"

	"github.com/statusgate/statusgate/core/ratchet/protobuf"
	"github.com/statusgate/statusgate/core/whisper"
)

// The deferred queue: direct messages whose X3DH session the work budgets refused
// (work.go) are kept and processed once the budgets have the work again, instead of
// being dropped. Before it, an honest peer whose first message arrived while strangers
// spent the global budget lost that message unless its next one repeated the X3DH
// header soon enough; a peer that sent one message and waited for an answer lost it.
//
// It has the shape of the deferred negotiated secrets: the work is not done now and not
// lost, it is done later on a natural trigger (here Retry, which status.Direct calls
// from its receive loop every DeferredTick, against the budgets on the injected clock).
//
// Only messages that passed every cheap check are kept: decoded, bundles verified and
// signed by the sender, our copy well formed, its X3DH header naming a signed prekey we
// hold, from an installation the sender's bundle made known (in this message, if the
// budget refused to store that bundle). Garbage fails before and costs neither budget
// nor queue space. A message is kept trimmed to what its retry needs (its bundles and
// our copy), with a copy of the envelope's metadata, counted at its encoded size plus
// deferredOverhead.
//
// Bounds: DeferredMessages messages and DeferredBytes bytes for all senders; one sender
// holds at most DeferredPerSender messages and the same share of the bytes
// (DeferredBytes × DeferredPerSender / DeferredMessages), so that one flooder cannot
// fill it (keys are free to mint, so the global bound stands beside it). Overflow
// policy: drop-oldest-of-the-largest-sender. A sender past its share loses its own
// oldest message; a full queue drops the oldest message of the sender holding the most
// bytes (then the most messages, then the oldest message). A message larger than a
// sender's share is not kept (dropped as before). Every message dropped is counted in
// Stats.DeferredDropped. The queue is in memory: what it holds at a restart is lost
// (honest peers repeat the X3DH header in their next messages until we answer).
const (
	DefaultDeferredMessages  = 1024
	DefaultDeferredBytes     = 4 << 20
	DefaultDeferredPerSender = 16

	// deferredOverhead is what a kept message costs beyond its encoded size (the
	// entry, the envelope's metadata, the sender's key, the map entries).
	deferredOverhead = 512
)

// Retried is the outcome of a deferred message that Retry processed.
type Retried struct {
	// Msg is the message as ReceiveEnvelope was given it (the envelope's hash, signer
	// and times), without its payload.
	Msg *whisper.ReceivedMessage
	// In and Err are what Receive would have returned had the budgets allowed the work
	// when the message came: call Processed with In.Receipt once it is handed over.
	In  *Incoming
	Err error
}

// deferredMsg is one kept message.
type deferredMsg struct {
	seq           uint64
	sender        string // compressed key
	msg           *whisper.ReceivedMessage
	pm            *protobuf.ProtocolMessage // trimmed: installation id, bundles, our copy
	size          int
	key           [32]byte // sender and our copy: the same message is kept once
	bundleRefused bool
}

// deferQueue holds the kept messages, oldest first. Guarded by Ratchet.mu.
type deferQueue struct {
	order    *list.List // of *deferredMsg
	byKey    map[[32]byte]*list.Element
	bySender map[string]*senderShare
	bytes    int
	seq      uint64
	queued   *atomic.Int64 // the length, for Stats without the lock
}

type senderShare struct{ count, bytes int }

func newDeferQueue() deferQueue {
	return deferQueue{order: list.New(), byKey: map[[32]byte]*list.Element{}, bySender: map[string]*senderShare{}, queued: new(atomic.Int64)}
}

func (q *deferQueue) remove(e *list.Element) *deferredMsg {
	d := q.order.Remove(e).(*deferredMsg)
	q.queued.Add(-1)
	delete(q.byKey, d.key)
	q.bytes -= d.size
	if s := q.bySender[d.sender]; s != nil {
		s.count--
		s.bytes -= d.size
		if s.count <= 0 {
			delete(q.bySender, d.sender)
		}
	}
	return d
}

// oldestOf returns the oldest kept message of sender.
func (q *deferQueue) oldestOf(sender string) *list.Element {
	for e := q.order.Front(); e != nil; e = e.Next() {
		if e.Value.(*deferredMsg).sender == sender {
			return e
		}
	}
	return nil
}

// largest returns the sender holding the most bytes (then the most messages, then the
// oldest message: the first met from the front).
func (q *deferQueue) largest() string {
	var best string
	var bs *senderShare
	for e := q.order.Front(); e != nil; e = e.Next() {
		d := e.Value.(*deferredMsg)
		s := q.bySender[d.sender]
		if bs == nil || s.bytes > bs.bytes || (s.bytes == bs.bytes && s.count > bs.count) {
			best, bs = d.sender, s
		}
	}
	return best
}

// deferMessage keeps a message the work budgets refused (refusal wraps ErrWorkRefused)
// and returns the error Receive gives for it: wrapping ErrDeferred when kept, refusal
// itself when not (too large for a sender's share). Caller holds r.mu.
func (r *Ratchet) deferMessage(rm *whisper.ReceivedMessage, pm *protobuf.ProtocolMessage, st *recvState, refusal error) error {
	sender := string(crypto.CompressPubkey(rm.Src))
	trimmed := &protobuf.ProtocolMessage{
		InstallationId: pm.GetInstallationId(),
		Bundles:        pm.GetBundles(),
		DirectMessage:  map[string]*protobuf.DirectMessageProtocol{st.copyKey: st.copy},
	}
	copyBytes, err := proto.MarshalOptions{Deterministic: true}.Marshal(st.copy)
	if err != nil {
		return refusal
	}
	key := sha256.Sum256(append([]byte(sender), copyBytes...))
	q := &r.deferred
	if _, ok := q.byKey[key]; ok {
		return fmt.Errorf("%w, kept already: %w", refusal, ErrDeferred) // a re-delivery of one we keep
	}
	size := proto.Size(trimmed) + deferredOverhead
	cfg := r.cfg
	shareBytes := int(int64(cfg.DeferredBytes) * int64(cfg.DeferredPerSender) / int64(cfg.DeferredMessages))
	if size > shareBytes || cfg.DeferredPerSender == 0 {
		r.stats.deferredDropped.Add(1)
		r.log.Debug("ratchet refused message not deferred: larger than a sender's share", "bytes", size, "share", shareBytes)
		return refusal
	}
	drop := func(e *list.Element, why string) {
		d := q.remove(e)
		r.stats.deferredDropped.Add(1)
		r.log.Debug("ratchet deferred message dropped", "why", why, "peer", fmt.Sprintf("%x", d.sender[:6]))
	}
	// A sender past its share loses its own oldest.
	for s := q.bySender[sender]; s != nil && (s.count >= cfg.DeferredPerSender || s.bytes+size > shareBytes); s = q.bySender[sender] {
		drop(q.oldestOf(sender), "sender's share full")
	}
	// A full queue: drop-oldest-of-the-largest-sender.
	for q.order.Len() > 0 && (q.order.Len() >= cfg.DeferredMessages || q.bytes+size > cfg.DeferredBytes) {
		drop(q.oldestOf(q.largest()), "queue full")
	}
	q.seq++
	kept := *rm
	kept.Payload, kept.Padding = nil, nil
	d := &deferredMsg{seq: q.seq, sender: sender, msg: &kept, pm: trimmed, size: size, key: key, bundleRefused: st.bundleRefused}
	q.byKey[key] = q.order.PushBack(d)
	q.queued.Add(1)
	q.bytes += size
	s := q.bySender[sender]
	if s == nil {
		s = &senderShare{}
		q.bySender[sender] = s
	}
	s.count++
	s.bytes += size
	r.stats.deferred.Add(1)
	r.log.Debug("ratchet x3dh message deferred: work budget spent", "peer", fmt.Sprintf("%x", sender[:6]),
		"queued", q.order.Len(), "bytes", q.bytes)
	return fmt.Errorf("%w: %w", refusal, ErrDeferred)
}

// Deferred reports how many messages are kept for Retry.
func (r *Ratchet) Deferred() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.deferred.order.Len()
}

// Retry processes the kept messages whose work the budgets now allow, oldest first (a
// sender without budget is passed over, its messages keep their place), until the
// global budget is spent or none is left, and returns their outcomes in that order:
// each as Receive would have returned it (failures counted in Stats as Receive counts
// them). A message refused again stays. Each is processed under the Ratchet's lock
// taken for it alone, so sends are not held up by a long queue.
func (r *Ratchet) Retry(ctx context.Context) []Retried {
	var out []Retried
	for ctx.Err() == nil {
		res, ok := r.retryOne(ctx)
		if !ok {
			break
		}
		out = append(out, res)
	}
	return out
}

// retryOne processes the oldest kept message whose work the budgets allow; ok false
// when there is none.
func (r *Ratchet) retryOne(ctx context.Context) (Retried, bool) {
	r.mu.Lock()
	q := &r.deferred
	var e *list.Element
	passed := map[string]bool{}
	for c := q.order.Front(); c != nil; c = c.Next() {
		d := c.Value.(*deferredMsg)
		if passed[d.sender] {
			continue
		}
		need := 1
		if d.bundleRefused || !r.peerFresh([]byte(d.sender)) {
			need = 2 // its bundle's rows, then the session
		}
		global, sender := r.workAvailable([]byte(d.sender))
		if global < 1 {
			break
		}
		if global >= float64(min(need, r.cfg.WorkBurst)) && sender >= float64(min(need, r.cfg.SenderWorkBurst)) {
			e = c
			break
		}
		passed[d.sender] = true
	}
	if e == nil {
		r.mu.Unlock()
		return Retried{}, false
	}
	d := e.Value.(*deferredMsg)
	var st recvState
	r.retrying = true
	in, err := r.receive(ctx, d.msg.Src, d.pm, &st)
	r.retrying = false
	if err != nil && (st.deferrable(err) || errors.Is(err, ErrStore)) {
		// Refused again (the estimate of its work was short), or our store failed
		// (nothing committed): it keeps its place, and this Retry ends here.
		r.mu.Unlock()
		if errors.Is(err, ErrStore) {
			r.drop(d.msg.Src, err)
		}
		return Retried{}, false
	}
	q.remove(e)
	r.stats.deferredRetried.Add(1)
	if err == nil {
		in.Evicted = r.takeEvicted()
	}
	r.mu.Unlock()
	if err != nil {
		r.drop(d.msg.Src, err)
	}
	return Retried{Msg: d.msg, In: in, Err: err}, true
}
