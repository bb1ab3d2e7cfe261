package status

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/identity"
)

// SeenStore remembers, across restarts, which 1:1 messages each of our identities
// (owner: its compressed key) was given, so that one re-delivered later (still in a
// peer's pool, or from a mailserver) is not given twice: a Double Ratchet message would
// fail on its deleted key, but a DH-mode message decrypts again. package store
// implements it.
type SeenStore interface {
	// Seen reports whether MarkSeen recorded id for owner.
	Seen(ctx context.Context, owner []byte, id [32]byte) (bool, error)
	// MarkSeen records id for owner, once the message was handed over.
	MarkSeen(ctx context.Context, owner []byte, id [32]byte, at time.Time) (bool, error)
}

// bookkeepingTimeout bounds the store writes after a hand-over (processed).
const bookkeepingTimeout = 10 * time.Second

// maxClocks bounds the Lamport clocks Direct keeps per peer. Overflow policy: the clock
// of a peer without an open Conversation is forgotten; its next message to us or from
// us starts again from the time of day, which a Lamport clock allows.
const maxClocks = 4096

// Direct is the 1:1 side of one of our identities: it listens on the identity's
// asymmetric topics (its partitioned topic, contact-discovery and its personal discovery
// topic) and on the negotiated topic of every peer it shares a secret with, decrypts
// with the identity's Ratchet, and delivers each direct message once, its author the
// key that signed both the envelope and the payload. Messages from a peer with an open
// Conversation go to that conversation; all others to Direct.Messages.
//
// It also answers messages not addressed to our installation with our bundle (the
// Ratchet rate-limits that) and advertises our contact code every 6 hours.
type Direct struct {
	c  *Client
	as *ecdsa.PrivateKey
	r  *ratchet.Ratchet

	in     chan *whisper.ReceivedMessage // fan-in of the subscriptions; block when full
	out    chan *Message
	ctx    context.Context // Direct's lifetime: the Direct context, cancelled by Close
	cancel context.CancelFunc
	done   chan struct{}
	wg     sync.WaitGroup // the subscription forwarders and the contact-code loop

	mu     sync.Mutex // guards subs, convs, clocks, seen and closed
	subs   map[whisper.Topic]*whisper.Subscription
	convs  map[string]*Conversation // by compressed peer key
	clocks map[string]*chat.Clock   // by compressed peer key
	seen   *dedupe
	closed bool
}

// Direct starts the 1:1 side of the identity as (Config.Ratchets gives its secure
// transport). It runs until ctx ends or Close is called. Run one Direct per identity:
// two would each take the other's messages.
func (c *Client) Direct(ctx context.Context, as *ecdsa.PrivateKey) (*Direct, error) {
	if as == nil {
		return nil, fmt.Errorf("direct: %w", chat.ErrNoAuthorKey)
	}
	if c.cfg.Ratchets == nil {
		return nil, fmt.Errorf("direct: %w", ErrNoRatchets)
	}
	r, err := c.cfg.Ratchets(ctx, as)
	if err != nil {
		return nil, fmt.Errorf("direct: %w", err)
	}
	d := &Direct{
		c: c, as: as, r: r,
		in: make(chan *whisper.ReceivedMessage, c.cfg.Buffer), out: make(chan *Message, c.cfg.Buffer),
		done: make(chan struct{}),
		subs: map[whisper.Topic]*whisper.Subscription{}, convs: map[string]*Conversation{},
		clocks: map[string]*chat.Clock{}, seen: newDedupe(c.cfg.DedupeWindow),
	}
	d.ctx, d.cancel = context.WithCancel(ctx)
	pub := &as.PublicKey
	names := []string{ratchet.PartitionedTopicName(pub), ratchet.DiscoveryTopicName, ratchet.PersonalDiscoveryTopicName(pub)}
	topics := make([]whisper.Topic, len(names))
	for i, n := range names {
		topics[i] = whisper.TopicFromName(n)
	}
	sub, err := c.tr.Subscribe(whisper.Filter{Topics: topics, AsymKey: as, AllowP2P: true})
	if err != nil {
		return nil, fmt.Errorf("direct: subscribe: %w", err)
	}
	d.forward(topics[0], sub)
	secrets, err := r.Secrets(ctx)
	if err == nil {
		for _, s := range secrets {
			if err = d.listen(s); err != nil {
				break
			}
		}
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		t := time.NewTicker(c.cfg.ContactCodeTick)
		defer t.Stop()
		_ = d.r.RunContactCode(d.ctx, t.C, nil, d.post) // returns when the Direct ends
	}()
	go d.receiveLoop()
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("direct: %w", err)
	}
	return d, nil
}

// owner is our identity's compressed key, the SeenStore's scope.
func (d *Direct) owner() []byte { return crypto.CompressPubkey(&d.as.PublicKey) }

// Key returns the identity Direct serves.
func (d *Direct) Key() *ecdsa.PublicKey { return &d.as.PublicKey }

// Installation returns our installation id for this identity.
func (d *Direct) Installation() string { return d.r.InstallationID() }

// Messages delivers the direct messages of peers without an open Conversation, each
// once, in arrival order. It is closed after Close.
func (d *Direct) Messages() <-chan *Message { return d.out }

// Close unsubscribes and waits until every goroutine has stopped and the message
// channels are closed.
func (d *Direct) Close() {
	d.cancel()
	<-d.done
}

// listen subscribes to the negotiated topic of s, once. Its key (PBKDF2) is derived
// only when not listening yet; the Ratchet bounds how many new secrets remote input
// reports (ratchet.Config.NewSecretsPerMinute).
func (d *Direct) listen(s *ratchet.Secret) error {
	d.mu.Lock()
	listening := d.closed || d.subs[s.Topic] != nil
	d.mu.Unlock()
	if listening {
		return nil
	}
	f, err := s.Filter()
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.subs[f.Topic] != nil {
		return nil
	}
	sub, err := d.c.tr.Subscribe(whisper.Filter{Topics: []whisper.Topic{f.Topic}, SymKey: f.SymKey, AllowP2P: true})
	if err != nil {
		return fmt.Errorf("subscribe to negotiated topic %s: %w", f.Topic, err)
	}
	d.forwardLocked(f.Topic, sub)
	return nil
}

func (d *Direct) forward(t whisper.Topic, sub *whisper.Subscription) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.forwardLocked(t, sub)
}

// forwardLocked records sub and starts its forwarder, which hands its messages to the
// receive loop (blocking: the overflow policy is backpressure) until quit.
func (d *Direct) forwardLocked(t whisper.Topic, sub *whisper.Subscription) {
	if d.closed {
		sub.Unsubscribe()
		return
	}
	d.subs[t] = sub
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		for {
			select {
			case <-d.ctx.Done():
				return
			case rm, ok := <-sub.C():
				if !ok {
					return
				}
				select {
				case d.in <- rm:
				case <-d.ctx.Done():
					return
				}
			}
		}
	}()
}

// receiveLoop processes what the forwarders hand in, one message at a time, until the
// Direct ends; then it unsubscribes, waits for the other goroutines and closes the
// message channels.
func (d *Direct) receiveLoop() {
	ctx := d.ctx
	defer close(d.done)
	defer func() {
		d.cancel()
		d.mu.Lock()
		d.closed = true
		subs := d.subs
		d.subs = nil
		convs := d.convs
		d.mu.Unlock()
		for _, s := range subs {
			s.Unsubscribe()
		}
		d.wg.Wait()
		close(d.out)
		for _, cv := range convs {
			close(cv.out)
		}
	}()
	// The X3DH messages the Ratchet's work budgets deferred are processed here too,
	// between received ones, when a tick finds the budgets refilled (ratchet.Retry).
	retry := time.NewTicker(d.c.cfg.RetryTick)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case rm := <-d.in:
			if !d.deliver(d.receive(ctx, rm)) {
				return
			}
		case <-retry.C:
			if d.r.Deferred() == 0 {
				continue
			}
			for _, r := range d.r.Retry(ctx) {
				if !d.deliver(d.accept(ctx, r.Msg, r.In, r.Err)) {
					return
				}
			}
		}
	}
}

// deliver hands over what accept returned and finishes it; false when the Direct
// ended first (the message key stays stored and it is not marked seen: not processed).
// Run by the receive loop.
func (d *Direct) deliver(m *Message, to chan<- *Message, receipt ratchet.Receipt) bool {
	ctx := d.ctx
	if m != nil {
		d.c.count(func(s *Stats) { s.Delivered++ })
		select {
		case to <- m:
		case <-ctx.Done():
			return false
		}
	}
	d.processed(ctx, m, receipt)
	return true
}

// processed finishes a message once it was handed over (or dropped): it marks it seen
// and deletes its message key. That is part of the delivery, so a Close right after
// the hand-over does not cut it short (bounded by bookkeepingTimeout).
func (d *Direct) processed(ctx context.Context, m *Message, receipt ratchet.Receipt) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	if seen := d.c.cfg.Seen; m != nil && seen != nil {
		if _, err := seen.MarkSeen(ctx, d.owner(), m.ID, d.c.cfg.Clock()); err != nil {
			d.c.log.Warn("status message not marked seen", "msg_id", m.ID, "err", err)
		}
	}
	if !receipt.IsZero() {
		if err := d.r.Processed(ctx, receipt); err != nil {
			d.c.log.Warn("status message key not deleted", "err", err)
		}
	}
}

// receive runs one received envelope through the secure transport and accept.
func (d *Direct) receive(ctx context.Context, rm *whisper.ReceivedMessage) (*Message, chan<- *Message, ratchet.Receipt) {
	if rm.Src == nil {
		return d.accept(ctx, rm, nil, nil)
	}
	in, err := d.r.ReceiveEnvelope(ctx, rm)
	return d.accept(ctx, rm, in, err)
}

// accept applies the 1:1 rules to what the secure transport made of one received
// envelope (in, err: ReceiveEnvelope's, or a deferred message's Retry outcome). It
// returns the message to deliver and where, or nil (counted and logged), and the
// receipt of the message key to delete once that is done.
func (d *Direct) accept(ctx context.Context, rm *whisper.ReceivedMessage, in *ratchet.Incoming, err error) (*Message, chan<- *Message, ratchet.Receipt) {
	c := d.c
	const where = "direct"
	if rm.Src == nil {
		c.drop(where, DropUnsigned, nil, rm.EnvelopeHash[:])
		return nil, nil, ratchet.Receipt{}
	}
	if errors.Is(err, ratchet.ErrDeferred) {
		// Kept by the Ratchet until its work budgets allow: a later Retry hands it back.
		c.log.Debug("status direct message deferred", "hash", rm.EnvelopeHash, "err", err)
		return nil, nil, ratchet.Receipt{}
	}
	if err != nil {
		c.drop(where, DropRatchet, err, rm.EnvelopeHash[:])
		if in != nil && in.Reply != nil { // our current bundle, to a peer that used an expired one
			if err := d.post(ctx, in.Reply); err != nil {
				c.log.Warn("status bundle-back not sent", "err", err)
			}
		}
		return nil, nil, ratchet.Receipt{}
	}
	d.unlisten(in.Evicted)
	if in.NewSecret != nil {
		if err := d.listen(in.NewSecret); err != nil {
			c.log.Warn("status negotiated topic not joined", "err", err)
		}
	}
	if in.Reply != nil {
		if err := d.post(ctx, in.Reply); err != nil {
			c.log.Warn("status bundle-back not sent", "err", err)
		}
	}
	if in.Kind != ratchet.KindDirect || len(in.Payload) == 0 {
		return nil, nil, in.Receipt // bundles, a copy for another installation, a bundle-back
	}
	dec, err := d.c.codec.Decode(in.Payload)
	if err != nil {
		reason := DropUndecodable
		if errors.Is(err, chat.ErrUnsupportedRecord) || errors.Is(err, chat.ErrUnsupportedType) {
			reason = DropUnsupported
		}
		c.drop(where, reason, err, rm.EnvelopeHash[:])
		return nil, nil, in.Receipt
	}
	msg := dec.Message
	if msg.MessageType != chat.MessageTypeOneToOne {
		c.drop(where, DropWrongChat, fmt.Errorf("message type %v in a direct message", msg.MessageType), rm.EnvelopeHash[:])
		return nil, nil, in.Receipt
	}
	author := rm.Src
	if dec.Author != nil && !dec.Author.Equal(rm.Src) {
		// A payload signed by someone else, re-sent in our sender's envelope: the
		// secure transport vouches for the envelope's signer only.
		c.drop(where, DropAuthorMismatch, nil, rm.EnvelopeHash[:])
		return nil, nil, in.Receipt
	}
	id, err := chat.MessageID(author, in.Payload)
	if err != nil {
		c.drop(where, DropBadAuthor, err, rm.EnvelopeHash[:])
		return nil, nil, in.Receipt
	}
	peer := string(crypto.CompressPubkey(author))
	now := c.cfg.Clock()
	d.mu.Lock()
	dup := !d.seen.add(id)
	var capped bool
	if !dup {
		capped = d.clockLocked(peer).Receive(msg.Clock, now)
	}
	to := d.out
	if cv := d.convs[peer]; cv != nil {
		to = cv.out
	}
	d.mu.Unlock()
	if !dup && c.cfg.Seen != nil {
		var err error
		if dup, err = c.cfg.Seen.Seen(ctx, d.owner(), id); err != nil {
			c.log.Warn("status seen messages not read", "msg_id", id, "err", err) // deliver: a rare duplicate beats a loss
		}
	}
	if dup {
		c.drop(where, DropDuplicate, nil, rm.EnvelopeHash[:])
		return nil, nil, in.Receipt
	}
	if capped {
		c.count(func(s *Stats) { s.Capped++ })
	}
	sent := time.Unix(int64(rm.Sent), 0)
	ts, replaced := boundedTimestamp(msg.Timestamp, sent)
	if replaced {
		c.count(func(s *Stats) { s.TimestampReplaced++ })
	}
	return &Message{
		ID: id, Chat: identity.ChatKey(author), Author: author, AuthorKey: identity.ChatKey(author), Alias: c.cfg.Namer.Name(author),
		Clock: msg.Clock, Timestamp: ts, Sent: sent,
		Text: msg.Text, ResponseTo: msg.ResponseTo, UnverifiedENSName: msg.ENSName, ContentType: msg.ContentType,
		Sticker: msg.Sticker, Format: msg.Format, ClockCapped: capped, Installation: in.InstallationID, Mode: in.Mode,
	}, to, in.Receipt
}

// clockLocked returns the Lamport clock of the conversation with peer (maxClocks
// bounds them). Caller holds d.mu.
func (d *Direct) clockLocked(peer string) *chat.Clock {
	cl := d.clocks[peer]
	if cl == nil {
		if len(d.clocks) >= maxClocks {
			for p := range d.clocks {
				if d.convs[p] == nil {
					delete(d.clocks, p)
					break
				}
			}
		}
		cl = &chat.Clock{}
		d.clocks[peer] = cl
	}
	return cl
}

// unlisten stops listening on the negotiated topics of secrets the Ratchet no longer
// holds (peers it evicted to keep its bound) and forgets their clocks, unless a
// Conversation with them is open.
func (d *Direct) unlisten(secrets []*ratchet.Secret) {
	if len(secrets) == 0 {
		return
	}
	var subs []*whisper.Subscription
	d.mu.Lock()
	for _, s := range secrets {
		peer := string(crypto.CompressPubkey(s.Peer))
		if d.convs[peer] != nil {
			continue
		}
		delete(d.clocks, peer)
		if sub := d.subs[s.Topic]; sub != nil {
			delete(d.subs, s.Topic)
			subs = append(subs, sub)
		}
	}
	d.mu.Unlock()
	for _, sub := range subs {
		sub.Unsubscribe() // its forwarder returns
	}
}

// post sends an encrypted message over Whisper as the envelope rules say, signed by our
// identity (receivers take the signer as the sender).
func (d *Direct) post(ctx context.Context, out *ratchet.Outgoing) error {
	if out.NewSecret != nil {
		// Listen first: the answer may already come on the negotiated topic.
		if err := d.listen(out.NewSecret); err != nil {
			return err
		}
	}
	c := d.c
	_, err := c.tr.Post(ctx, &whisper.MessageParams{Topic: out.Envelope.Topic, KeySym: out.Envelope.SymKey, Dst: out.Envelope.Dst,
		Src: d.as, Payload: out.Payload, TTL: c.cfg.TTL, PoW: c.cfg.PoW, WorkTime: c.cfg.WorkTime})
	return err
}

// NextClock reserves and returns the next Lamport clock of the conversation with peer
// for a message sent at now (max(now in ms, last + 1)), for an Outgoing.Clock fixed
// by the caller.
func (d *Direct) NextClock(peer *ecdsa.PublicKey, now time.Time) uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.clockLocked(string(crypto.CompressPubkey(peer))).Send(now)
}

// Send sends text to the peer to as a 1:1 message; see SendMessage.
func (d *Direct) Send(ctx context.Context, to *ecdsa.PublicKey, text string) (chat.ID, error) {
	return d.SendMessage(ctx, to, Outgoing{Text: text})
}

// SendMessage sends m to the peer to: a ONE_TO_ONE ChatMessage in an
// ApplicationMetadataMessage signed by our identity (what status-go reads), encrypted by
// the Ratchet for every known installation of to (Double Ratchet, X3DH from a known
// bundle, or DH when none is known), on the topic the Ratchet chooses (partitioned, then
// negotiated once agreed). It returns the message id.
func (d *Direct) SendMessage(ctx context.Context, to *ecdsa.PublicKey, m Outgoing) (chat.ID, error) {
	select {
	case <-d.done:
		return chat.ID{}, fmt.Errorf("direct send: %w", ErrLeft)
	default:
	}
	if to == nil || to.X == nil {
		return chat.ID{}, fmt.Errorf("direct send: recipient: %w", ratchet.ErrInvalidKey)
	}
	c := d.c
	now := m.Timestamp
	if now.IsZero() {
		now = c.cfg.Clock()
	}
	peer := string(crypto.CompressPubkey(to))
	d.mu.Lock()
	cl := d.clockLocked(peer)
	clock := m.Clock
	if clock == 0 {
		clock = cl.Send(now)
	} else if clock > cl.Last() {
		cl.SetLast(clock)
	}
	d.mu.Unlock()
	msg := &chat.Message{Clock: clock, Timestamp: uint64(now.UnixMilli()), Text: m.Text, ChatID: identity.ChatKey(to),
		ResponseTo: m.ResponseTo, MessageType: chat.MessageTypeOneToOne, ContentType: chat.ContentTextPlain}
	payload, err := chat.Encode(msg, chat.FormatProtobuf, d.as)
	if err != nil {
		return chat.ID{}, fmt.Errorf("direct send: %w", err)
	}
	id, err := chat.MessageID(&d.as.PublicKey, payload)
	if err != nil {
		return chat.ID{}, fmt.Errorf("direct send: %w", err)
	}
	out, err := d.r.Encrypt(ctx, to, payload)
	if err != nil {
		return chat.ID{}, fmt.Errorf("direct send: %w", err)
	}
	d.unlisten(out.Evicted)
	if err := d.post(ctx, out); err != nil {
		return chat.ID{}, fmt.Errorf("direct send: %w", err)
	}
	c.count(func(s *Stats) { s.Sent++ })
	return id, nil
}

// Conversation is the 1:1 chat with one peer, opened on a Direct. Its messages arrive
// on Messages, each once, until the Direct closes (then the channel is closed).
type Conversation struct {
	d    *Direct
	peer *ecdsa.PublicKey
	out  chan *Message
}

// Open returns the conversation with peer (one per peer: a second Open returns the
// same). From then on peer's messages go to it instead of Direct.Messages. The peer is
// pinned in the Ratchet: its state is never evicted to make room for others
// (ratchet.Config.MaxPeers).
func (d *Direct) Open(peer *ecdsa.PublicKey) (*Conversation, error) {
	if peer == nil || peer.X == nil {
		return nil, fmt.Errorf("open conversation: %w", ratchet.ErrInvalidKey)
	}
	if d.ctx.Err() != nil {
		return nil, fmt.Errorf("open conversation: %w", ErrLeft)
	}
	if err := d.r.Pin(d.ctx, peer); err != nil {
		return nil, fmt.Errorf("open conversation: %w", err)
	}
	k := string(crypto.CompressPubkey(peer))
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("open conversation: %w", ErrLeft)
	}
	if cv := d.convs[k]; cv != nil {
		return cv, nil
	}
	cv := &Conversation{d: d, peer: peer, out: make(chan *Message, d.c.cfg.Buffer)}
	d.convs[k] = cv
	return cv, nil
}

// OpenChatKey opens the conversation with the peer named by a chat key in any of the
// forms identity.ParseChatKey reads (0x04…, compressed, zQ3…).
func (d *Direct) OpenChatKey(key string) (*Conversation, error) {
	pub, err := identity.ParseChatKey(key)
	if err != nil {
		return nil, fmt.Errorf("open conversation: %w", err)
	}
	return d.Open(pub)
}

// Peer returns the other side's key.
func (cv *Conversation) Peer() *ecdsa.PublicKey { return cv.peer }

// Messages delivers the peer's messages, each once, in arrival order.
func (cv *Conversation) Messages() <-chan *Message { return cv.out }

// Send sends text to the peer (Direct.Send).
func (cv *Conversation) Send(ctx context.Context, text string) (chat.ID, error) {
	return cv.d.Send(ctx, cv.peer, text)
}

// NextClock is Direct.NextClock for the peer.
func (cv *Conversation) NextClock(now time.Time) uint64 { return cv.d.NextClock(cv.peer, now) }

// SendMessage sends m to the peer (Direct.SendMessage).
func (cv *Conversation) SendMessage(ctx context.Context, m Outgoing) (chat.ID, error) {
	return cv.d.SendMessage(ctx, cv.peer, m)
}
