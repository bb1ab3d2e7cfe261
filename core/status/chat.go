package status

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/identity"
)

// ErrLeft: the chat was left (or its context ended) before the call.
var ErrLeft = errors.New("chat left")

// ErrUnsendable: SendMessage was given a message the protocol cannot carry (text longer
// than MaxTextLength, invalid UTF-8, no author key): sending it again cannot succeed.
// The error also wraps the core/chat sentinel that says why.
var ErrUnsendable = errors.New("message cannot be sent")

// MaxTextLength is the longest text one message carries, in characters (runes): what
// Status clients accept (core/chat.MaxTextLength).
const MaxTextLength = chat.MaxTextLength

// JoinOptions adjust one chat.
type JoinOptions struct {
	// SendFormat overrides Config.SendFormat for this chat.
	SendFormat chat.SendFormat
	// OmitLocal leaves out of Messages what this client's transport (its node) posts
	// itself, whichever client posted it: those envelopes are neither decrypted nor
	// their signers recovered (whisper.Filter.OmitLocal). SendMessage then records the
	// ids and twin of what it sent, as the echo would have: TwinOf knows them, and a
	// copy from a mailserver is a duplicate. For the gateway, whose node posts only as
	// its puppets, which it would recognise and drop.
	OmitLocal bool
}

// Chat is one joined public chat. Messages arrive on Messages until Leave or the Join
// context ends, after which the channel is closed.
type Chat struct {
	c      *Client
	name   string
	topic  whisper.Topic
	key    *whisper.SymKey
	format chat.SendFormat
	// omitLocal: the subscription leaves out our own posts (JoinOptions.OmitLocal).
	omitLocal bool
	sub       *whisper.Subscription
	out       chan *Message
	quit      chan struct{}
	done      chan struct{}
	once      sync.Once
	// history is the chat's own catch-up (HistoryConfig.Mailservers), if any: stopped
	// and waited for by Leave.
	history     sync.WaitGroup
	stopHistory context.CancelFunc

	mu    sync.Mutex // guards clock, seen and twins
	clock chat.Clock
	seen  *dedupe
	twins *twinIndex
}

// Join subscribes to the public chat name (bare, without '#'). The chat runs until ctx
// ends or Leave is called.
func (c *Client) Join(ctx context.Context, name string, opts ...JoinOptions) (*Chat, error) {
	if err := chat.ValidateChatName(name); err != nil {
		return nil, fmt.Errorf("join %q: %w", name, err)
	}
	key, err := chat.PublicChatKey(name)
	if err != nil {
		return nil, fmt.Errorf("join %q: %w", name, err)
	}
	format := c.cfg.SendFormat
	omitLocal := false
	for _, o := range opts {
		if o.SendFormat != 0 {
			format = o.SendFormat
		}
		omitLocal = omitLocal || o.OmitLocal
	}
	if format.Wrapped() && c.cfg.Ratchets == nil {
		return nil, fmt.Errorf("join %q: send format wrapped: %w", name, ErrNoRatchets)
	}
	topic := chat.PublicChatTopic(name)
	// LazySigner: accept recovers the Whisper signer only for a message it keeps (a
	// duplicate, most often the other payload of a message sent in both formats, is
	// dropped without it), and takes a protobuf message's author from its own signature.
	sub, err := c.tr.Subscribe(whisper.Filter{Topics: []whisper.Topic{topic}, SymKey: key, AllowP2P: true,
		OmitLocal: omitLocal, LazySigner: true})
	if err != nil {
		return nil, fmt.Errorf("join %q: %w", name, err)
	}
	ch := &Chat{c: c, name: name, topic: topic, key: key, format: format, sub: sub, omitLocal: omitLocal,
		out: make(chan *Message, c.cfg.Buffer), quit: make(chan struct{}), done: make(chan struct{}),
		seen: newDedupe(c.cfg.DedupeWindow), twins: newTwinIndex(c.cfg.DedupeWindow), stopHistory: func() {}}
	go ch.receiveLoop(ctx)
	if peers, ok := c.tr.(MailserverPeers); ok && c.cfg.History.Client != nil && c.cfg.History.Mailservers != nil {
		hctx, cancel := context.WithCancel(ctx)
		ch.stopHistory = cancel
		ch.history.Go(func() { defer cancel(); ch.catchUp(hctx, peers) })
	}
	return ch, nil
}

// Name is the chat's name.
func (ch *Chat) Name() string { return ch.name }

// Messages delivers the chat's messages, each once, in arrival order (sort by SortKey
// for display order). It is closed after Leave.
func (ch *Chat) Messages() <-chan *Message { return ch.out }

// Leave unsubscribes and waits until the receive loop (and the chat's own catch-up, if
// any) has stopped and Messages is closed.
func (ch *Chat) Leave() {
	ch.once.Do(func() { close(ch.quit) })
	ch.stopHistory()
	ch.history.Wait()
	<-ch.done
}

func (ch *Chat) receiveLoop(ctx context.Context) {
	defer close(ch.done)
	defer close(ch.out)
	defer ch.sub.Unsubscribe()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch.quit:
			return
		case rm, ok := <-ch.sub.C():
			if !ok {
				return
			}
			m := ch.accept(ctx, rm)
			if m == nil {
				continue
			}
			// Counted before the hand-over, so that a reader who has the message also
			// sees it counted (a Leave racing the hand-over may count one too many).
			ch.c.count(func(s *Stats) { s.Delivered++ })
			select {
			case ch.out <- m:
			case <-ctx.Done():
				return
			case <-ch.quit:
				return
			}
		}
	}
}

// accept applies the public chat rules to one opened Whisper message and returns what to
// deliver, or nil (counted and logged) for anything dropped.
//
// Both signatures of a protobuf message are checked before it is delivered, as
// status-go does: the Whisper envelope's (it must recover) and the
// ApplicationMetadataMessage's (its signer is the author, §7.5); a Transit message's
// author is the Whisper signer. The Whisper signer is recovered lazily
// (whisper.Filter.LazySigner): a protobuf message that turns out to be a duplicate is
// dropped without it, since nothing of what a duplicate records (its id's twin) depends
// on that signer.
func (ch *Chat) accept(ctx context.Context, rm *whisper.ReceivedMessage) *Message {
	c := ch.c
	if !rm.Signed() {
		c.drop(ch.name, DropUnsigned, nil, rm.EnvelopeHash[:])
		return nil
	}
	payload, installation, err := c.unwrapPublic(ctx, rm)
	if err != nil {
		reason := DropUnsupported
		switch {
		case errors.Is(err, errBadBundle):
			reason = DropBadBundle
		case errors.Is(err, whisper.ErrBadSignature):
			reason = DropBadSignature
		}
		c.drop(ch.name, reason, err, rm.EnvelopeHash[:])
		return nil
	}
	dec, err := c.codec.Decode(payload)
	if err != nil {
		reason := DropUndecodable
		if errors.Is(err, chat.ErrUnsupportedRecord) || errors.Is(err, chat.ErrUnsupportedType) {
			reason = DropUnsupported
		}
		c.drop(ch.name, reason, err, rm.EnvelopeHash[:])
		return nil
	}
	msg := dec.Message
	if msg.ChatID != ch.name || msg.MessageType != chat.MessageTypePublicGroup {
		c.drop(ch.name, DropWrongChat, fmt.Errorf("chat id %q, type %v", msg.ChatID, msg.MessageType), rm.EnvelopeHash[:])
		return nil
	}
	author := dec.Author // §7.5: the wrapper's or metadata's signer is the author
	outerChecked := false
	if author == nil {
		if author, err = rm.Signer(); err != nil {
			c.drop(ch.name, DropBadSignature, err, rm.EnvelopeHash[:])
			return nil
		}
		outerChecked = true
	}
	id, err := chat.MessageID(author, payload) // over the inner bytes when wrapped, as status-go
	if err != nil {
		c.drop(ch.name, DropBadAuthor, err, rm.EnvelopeHash[:])
		return nil
	}
	now := c.cfg.Clock()
	// A message sent in both formats is two payloads with two ids; the twin key
	// (author, clock, text) lets readers of both generations show it once.
	twin := twinKey(author, msg)
	var dup, capped bool
	for {
		ch.mu.Lock()
		if !outerChecked && !ch.seen.has(id) && !ch.seen.has(twin) {
			// To be kept: its envelope's signature must recover too. Not under the
			// lock (a recovery is tens of µs); decided again after it.
			ch.mu.Unlock()
			if _, err := rm.Signer(); err != nil {
				c.drop(ch.name, DropBadSignature, err, rm.EnvelopeHash[:])
				return nil
			}
			outerChecked = true
			continue
		}
		ch.twins.put(id, twin) // duplicates too: a reply may name either payload's id
		dup = !ch.seen.add(id) || !ch.seen.add(twin)
		if !dup {
			capped = ch.clock.Receive(msg.Clock, now)
		}
		ch.mu.Unlock()
		break
	}
	if dup {
		c.drop(ch.name, DropDuplicate, nil, rm.EnvelopeHash[:])
		return nil
	}
	if capped {
		c.count(func(s *Stats) { s.Capped++ })
		c.log.Debug("status clock capped", "chat", ch.name, "clock", msg.Clock, "msg_id", id)
	}
	sent := time.Unix(int64(rm.Sent), 0)
	ts, replaced := boundedTimestamp(msg.Timestamp, sent)
	if replaced {
		c.count(func(s *Stats) { s.TimestampReplaced++ })
	}
	return &Message{
		ID: id, TwinID: twin, Chat: ch.name, Author: author, AuthorKey: identity.ChatKey(author), Alias: c.cfg.Namer.Name(author),
		Clock: msg.Clock, Timestamp: ts, Sent: sent,
		Text: msg.Text, ResponseTo: msg.ResponseTo, UnverifiedENSName: msg.ENSName, ContentType: msg.ContentType,
		Sticker: msg.Sticker, Format: msg.Format, ClockCapped: capped, Installation: installation,
	}
}

// twinKey identifies a message independently of its payload generation.
func twinKey(author *ecdsa.PublicKey, m *chat.Message) chat.ID {
	h := sha256.New()
	h.Write(crypto.FromECDSAPub(author))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], m.Clock)
	h.Write(b[:])
	h.Write([]byte(m.Text))
	var id chat.ID // SHA-256, not keccak: a different domain from real message ids
	copy(id[:], h.Sum(nil))
	return id
}

// Send posts text to the chat as the identity as: signed with it, encrypted with the
// chat key, in the chat's send format(s). It returns the message id of each payload
// sent (two for the both format). Sealing takes up to Config.WorkTime per envelope.
func (ch *Chat) Send(ctx context.Context, text string, as *ecdsa.PrivateKey) ([]chat.ID, error) {
	return ch.SendMessage(ctx, Outgoing{Text: text}, as)
}

// Outgoing is a text message to send with SendMessage. Fixing Clock and Timestamp
// makes the payloads, and so the message ids, the same on every send: a message sent
// again after a crash is then one message to every Status client (they deduplicate by
// id), which is how the gateway retries without duplicates.
type Outgoing struct {
	Text string
	// Clock is the Lamport clock; 0 takes the chat's next one (see NextClock).
	Clock uint64
	// Timestamp is the sender's time; zero means now. Sent in milliseconds.
	Timestamp time.Time
	// ResponseTo is the id ("0x" + 64 hex) of the message answered, or "".
	ResponseTo string
}

// TwinID returns the Message.TwinID that m, sent by author, has at its receivers. It
// needs m.Clock fixed (not 0).
func (m Outgoing) TwinID(author *ecdsa.PublicKey) chat.ID {
	return twinKey(author, &chat.Message{Clock: m.Clock, Text: m.Text})
}

// NextClock reserves and returns the chat's next Lamport clock for a message sent at
// now: max(now in ms, last + 1). A caller that fixes Outgoing.Clock takes it from here,
// so that messages keep their order.
func (ch *Chat) NextClock(now time.Time) uint64 {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.clock.Send(now)
}

// NextClocks reserves n consecutive Lamport clocks for a message sent at now in n
// parts (a long text split by the gateway) and returns the first: the parts get first,
// first+1, …, so that clients show them in order and nothing sorts between them.
func (ch *Chat) NextClocks(now time.Time, n int) uint64 {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	first := ch.clock.Send(now)
	if n > 1 {
		ch.clock.SetLast(first + uint64(n-1))
	}
	return first
}

// RestoreClock raises the chat's Lamport clock to at least last, a clock its owner
// persisted (the gateway's ledger), so that messages sent after a restart sort after
// those sent before it, even when those were sent faster than one a millisecond.
func (ch *Chat) RestoreClock(last uint64) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if last > ch.clock.Last() {
		ch.clock.SetLast(last)
	}
}

// SendMessage posts m to the chat as the identity as: signed with it, encrypted with
// the chat key, in the chat's send format(s). It returns the message id of each payload
// sent (two for the both format); with m.Clock and m.Timestamp fixed, the ids are the
// same on every call. The wrapped format puts each payload in a ProtocolMessage with
// as's bundle (Config.Ratchets); the id is the inner payload's. Sealing takes up to
// Config.WorkTime per envelope.
func (ch *Chat) SendMessage(ctx context.Context, m Outgoing, as *ecdsa.PrivateKey) ([]chat.ID, error) {
	select {
	case <-ch.done:
		return nil, fmt.Errorf("send to %q: %w", ch.name, ErrLeft)
	default:
	}
	if as == nil {
		return nil, fmt.Errorf("send to %q: %w: %w", ch.name, ErrUnsendable, chat.ErrNoAuthorKey)
	}
	c := ch.c
	now := m.Timestamp
	if now.IsZero() {
		now = c.cfg.Clock()
	}
	clock := m.Clock
	if clock == 0 {
		clock = ch.NextClock(now)
	} else {
		ch.mu.Lock()
		if clock > ch.clock.Last() {
			ch.clock.SetLast(clock)
		}
		ch.mu.Unlock()
	}
	msg := &chat.Message{Clock: clock, Timestamp: uint64(now.UnixMilli()), Text: m.Text, ChatID: ch.name,
		ResponseTo: m.ResponseTo, MessageType: chat.MessageTypePublicGroup, ContentType: chat.ContentTextPlain}
	// Our own subscription reads what we send back unless omitLocal: then the
	// signatures are remembered (the codec's cache) and reading them back recovers none.
	codec := c.codec
	if ch.omitLocal {
		codec = chat.Codec{}
	}
	payloads, err := codec.EncodeFor(msg, ch.format, as)
	if err != nil {
		return nil, fmt.Errorf("send to %q: %w: %w", ch.name, ErrUnsendable, err)
	}
	ids := make([]chat.ID, 0, len(payloads))
	for _, p := range payloads {
		id, err := chat.MessageID(&as.PublicKey, p)
		if err != nil {
			return ids, fmt.Errorf("send to %q: %w", ch.name, err)
		}
		if ch.format.Wrapped() {
			if p, err = c.wrapPublic(ctx, as, p); err != nil {
				return ids, fmt.Errorf("send to %q: %w", ch.name, err)
			}
		}
		if _, err := c.tr.Post(ctx, &whisper.MessageParams{Topic: ch.topic, KeySym: ch.key, Src: as, Payload: p,
			TTL: c.cfg.TTL, PoW: c.cfg.PoW, WorkTime: c.cfg.WorkTime}); err != nil {
			return ids, fmt.Errorf("send to %q: %w", ch.name, err)
		}
		ids = append(ids, id)
		c.count(func(s *Stats) { s.Sent++ })
		if ch.omitLocal {
			// What accept would have recorded of the echo.
			twin := twinKey(&as.PublicKey, msg)
			ch.mu.Lock()
			ch.twins.put(id, twin)
			ch.seen.add(id)
			ch.seen.add(twin)
			ch.mu.Unlock()
		}
	}
	return ids, nil
}

// TwinOf returns the TwinID of the message whose id ("0x" + 64 hex) is messageID, when
// the chat received it (in either payload generation, delivered or dropped as the
// other's twin) among its last Config.DedupeWindow messages. A reply names the id of
// the payload its client sent; TwinOf finds the message whichever one that was.
func (ch *Chat) TwinOf(messageID string) (chat.ID, bool) {
	id, err := chat.ParseID(messageID)
	if err != nil {
		return chat.ID{}, false
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	t, ok := ch.twins.m[id]
	return t, ok
}

// twinIndex maps the last n message ids to their twin keys (FIFO eviction: the oldest
// goes). Like dedupe it grows as messages arrive, up to n, instead of being sized for n
// at Join: every joined chat had 10,000 slots of both (about 2.3 MiB) however quiet it was.
type twinIndex struct {
	n    int
	ring []chat.ID
	next int
	m    map[chat.ID]chat.ID
}

func newTwinIndex(n int) *twinIndex {
	return &twinIndex{n: n, m: make(map[chat.ID]chat.ID)}
}

func (t *twinIndex) put(id, twin chat.ID) {
	if _, ok := t.m[id]; ok {
		return
	}
	if len(t.ring) < t.n {
		t.ring = appendBounded(t.ring, id, t.n)
	} else {
		delete(t.m, t.ring[t.next])
		t.ring[t.next] = id
		t.next = (t.next + 1) % len(t.ring)
	}
	t.m[id] = twin
}

// has reports whether id is remembered.
func (d *dedupe) has(id chat.ID) bool {
	_, ok := d.set[id]
	return ok
}

// dedupe remembers the last n ids (FIFO eviction: the oldest goes), growing up to n.
type dedupe struct {
	n    int
	ring []chat.ID
	next int
	set  map[chat.ID]struct{}
}

func newDedupe(n int) *dedupe {
	return &dedupe{n: n, set: make(map[chat.ID]struct{})}
}

// add records id and reports whether it was new.
func (d *dedupe) add(id chat.ID) bool {
	if _, ok := d.set[id]; ok {
		return false
	}
	if len(d.ring) < d.n {
		d.ring = appendBounded(d.ring, id, d.n)
	} else {
		delete(d.set, d.ring[d.next])
		d.ring[d.next] = id
		d.next = (d.next + 1) % len(d.ring)
	}
	d.set[id] = struct{}{}
	return true
}

// appendBounded appends id to ring (len(ring) < n), doubling its capacity when full
// but never beyond n.
func appendBounded(ring []chat.ID, id chat.ID, n int) []chat.ID {
	if len(ring) == cap(ring) {
		grown := make([]chat.ID, len(ring), min(max(2*cap(ring), 64), n))
		copy(grown, ring)
		ring = grown
	}
	return append(ring, id)
}
