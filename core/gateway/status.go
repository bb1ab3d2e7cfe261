package gateway

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/identity"
	"github.com/statusgate/statusgate/records"
)

// The Status side. Every route has a Status public chat: the gateway reads it
// (readStatus) and delivers into it as the senders' puppets (statusDest). This file is
// the only place that knows how Status numbers messages: Lamport clocks, reserved at
// ingest so that a retry sends the same message, and twin IDs, which name a message
// whichever of its two payload generations a client reads.

// StatusNet is the Status network as the gateway uses it: public chats it joins, reads
// and posts into as a key. StatusOver (statusnode.go) runs it on core/status; the
// gateway's tests run it in memory.
type StatusNet interface {
	// Join subscribes to the public chat name (bare, checked by Config.Validate). The
	// chat runs until ctx ends or Leave.
	Join(ctx context.Context, name string) (StatusChat, error)
}

// StatusChat is one joined public chat. Its methods are safe for concurrent use.
type StatusChat interface {
	// Next returns the chat's next message, each once, in arrival order (the
	// gateway's own may be among them: StatusOver leaves out what its node posts, but
	// not a puppet's post read back from a mailserver or another node); ok is false once the chat ended or ctx is done. Overflow
	// policy: the chat holds messages until they are read (back-pressure).
	Next(ctx context.Context) (m StatusMessage, ok bool)
	// NextClocks reserves n consecutive Lamport clocks for messages sent at t and
	// returns the first.
	NextClocks(t time.Time, n int) uint64
	// RestoreClock makes every clock handed out later greater than last.
	RestoreClock(last uint64)
	// Post sends p signed by key. With p.Clock set, posting the same p again sends the
	// same message (the same IDs). An error wrapping ErrStatusUnsendable means p can
	// never be sent; any other is worth a retry.
	Post(ctx context.Context, p StatusPost, key *ecdsa.PrivateKey) (StatusPosted, error)
	// TwinOf returns the twin ID of the message one of whose payloads has the id, if
	// the chat knows it.
	TwinOf(id string) (twin string, ok bool)
	// Leave ends the chat and waits for what it runs.
	Leave()
}

// StatusMessage is a message read from a chat. IDs are hex ("0x…").
type StatusMessage struct {
	ID         string // the id of the payload read
	TwinID     string // the same for both payload generations of the message
	AuthorKey  string // identity.ChatKey of the signer
	Alias      string // the author's display name, derived from the key
	Text       string
	ResponseTo string // the id the message answers, if any
	Sticker    bool
	Timestamp  time.Time // the sender's claim
	Sent       time.Time // the envelope's time (bounded by the network)
}

// StatusPost is a message to post.
type StatusPost struct {
	Text       string
	ResponseTo string // the id of the answered message, if any
	Clock      uint64 // fixed (reserved at ingest), or 0 for the chat's next
	Timestamp  time.Time
}

// StatusPosted is what a post sent: the message's twin ID and each payload's id.
type StatusPosted struct {
	TwinID string
	IDs    []string
}

// ErrStatusUnsendable: a StatusPost that no retry can send (too long, bad text).
var ErrStatusUnsendable = errors.New("status message cannot be sent")

// notOursLimit bounds the negative cache of chat keys found to be no puppet.
const notOursLimit = 10_000

// oursLimit bounds the cache of chat keys of puppets this process spoke as: every remote
// user relayed to Status adds one, so remote input grows it (at the new-sender budget's
// pace, for ever). Eviction policy: cleared when full (about 10 MiB); a key no longer
// cached is found in the puppet registry again (isOurs).
const oursLimit = 50_000

// statusDest delivers into a route's Status chat as the senders' puppets.
type statusDest struct {
	g    *Gateway
	rt   *route
	chat StatusChat
}

// statusParallel is how many Status deliveries are sealed at once. Status needs no
// delivery order (clients order by the clock fixed at ingest), and sealing (signing,
// encryption, proof of work) is CPU work that one goroutine would serialise.
func (d *statusDest) parallel() int { return statusParallel }

// settle: a Status delivery stays unmarked for two Whisper transmission cycles
// (statusSettle).
func (d *statusDest) settle() time.Duration { return statusSettle }

// ready: the chat is joined before its outbox starts.
func (d *statusDest) ready(context.Context) bool { return true }

// reserve fixes the clocks of ev's messages now (one per part of a long text,
// consecutive), so that every retry sends the same message ids.
func (d *statusDest) reserve(ev *bridges.Event) uint64 {
	return d.chat.NextClocks(ev.Time, len(d.g.statusTexts(d.rt, ev)))
}

// restore resumes the chat's clock after those fixed before a restart, which may run
// ahead of the wall clock (a burst faster than one message a millisecond).
func (d *statusDest) restore(ctx context.Context) error {
	last, err := d.g.ledger.MaxClock(ctx, string(d.rt.status))
	if err != nil {
		return fmt.Errorf("read clock of %q: %w", d.rt.Chat, err)
	}
	// The last entry may have been split: its parts took up to MaxParts clocks.
	if last > 0 {
		last += uint64(d.g.cfg.MaxParts)
	}
	d.chat.RestoreClock(last)
	return nil
}

// deliver posts ev into the chat as the sender's puppet, one message per part of a
// long text, with the clocks reserved at ingest (parts already posted are posted again:
// Status clients show a message id once).
func (d *statusDest) deliver(ctx context.Context, o *outbox, e records.OutboxEntry, ev *bridges.Event) ([]string, error) {
	g := d.g
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
	var responseTo string
	if ev.ReplyTo != "" {
		if responseTo, err = d.mappedID(ctx, o, ev, ev.ReplyTo); err != nil {
			return nil, err
		}
	}
	var ids []string
	for i, text := range g.statusTexts(d.rt, ev) {
		p := StatusPost{Text: text, Timestamp: ev.Time}
		if e.Clock != 0 {
			p.Clock = e.Clock + uint64(i) // reserved at ingest
		}
		if i == 0 {
			p.ResponseTo = responseTo
		}
		start := g.clock.Now()
		sent, err := d.chat.Post(ctx, p, key)
		g.m.sendTime.Observe(g.clock.Now().Sub(start).Seconds())
		if errors.Is(err, ErrStatusUnsendable) {
			return nil, bridges.Permanent(err) // the same message can never be sent
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", bridges.ErrTransient, err)
		}
		for _, id := range sent.IDs {
			ids = append(ids, StatusNetwork+":"+id)
		}
		if p.Clock != 0 && sent.TwinID != "" {
			// Mapped too: the echo of this message is then a known origin (a
			// duplicate), and a reply naming it resolves through the chat's twin index.
			if twin, err := twinOrigin(sent.TwinID); err == nil {
				ids = append(ids, string(twin))
			}
		}
	}
	return ids, nil
}

// mappedID returns the payload id ("0x…") in the chat of the message id (of ev's
// origin network), or "" when none is known. The ledger maps a Status message by its
// twin origin as well as by its payload ids: only the latter can be answered.
func (d *statusDest) mappedID(ctx context.Context, o *outbox, ev *bridges.Event, id bridges.RemoteMsgID) (string, error) {
	ids, err := o.mappedIDs(ctx, ev, id)
	if err != nil {
		return "", err
	}
	for _, m := range ids {
		if local := bridges.RemoteMsgID(m).Local(); !strings.HasPrefix(local, twinPrefix) {
			return local, nil
		}
	}
	return "", nil
}

// twinPrefix starts the local part of a Status message's origin ID: the twin ID.
const twinPrefix = "twin-"

// twinOrigin is the origin ID of the Status message whose twin ID is twin.
func twinOrigin(twin string) (bridges.RemoteMsgID, error) {
	return bridges.NewRemoteMsgID(StatusNetwork, twinPrefix+twin)
}

// readStatus relays the messages of one route's chat until the chat ends.
func (d *statusDest) readStatus(ctx context.Context) {
	g, rt := d.g, d.rt
	for {
		m, ok := d.chat.Next(ctx)
		if !ok {
			return
		}
		if g.isOurs(ctx, m.AuthorKey) {
			g.m.dropped.WithLabelValues(dropLoop).Inc()
			continue
		}
		// Flood control on the envelope's time, not the arrival: a mailserver catch-up
		// delivers hours of a chat at once, each message at the time it was sent.
		now := g.clock.Now()
		if ok, reason := g.limits.allow(StatusNetwork, StatusNetwork+":"+m.AuthorKey, earliest(m.Sent, now)); !ok {
			g.m.dropped.WithLabelValues(reason).Inc()
			g.limits.dropped(StatusNetwork, StatusNetwork+":"+m.AuthorKey, reason, now, "chat", rt.Chat)
			continue
		}
		ev, err := d.event(m)
		if err != nil {
			g.log.Warn("status message not relayable", "chat", rt.Chat, "id", m.ID, "err", err)
			continue
		}
		if len(g.destinations(rt, &ev)) == 0 {
			continue
		}
		// The payload id is an alias of the twin origin: a remote reply to the message
		// maps back to an id Status clients know.
		if err := g.ingest(ctx, rt, ev, false, StatusNetwork+":"+m.ID); err != nil {
			// Only when ctx ended: the message is recovered by the mailserver catch-up
			// after restart (and deduplicated if it did get in).
			g.log.Warn("status message not persisted", "chat", rt.Chat, "id", m.ID, "err", err)
		}
	}
}

// earliest returns the earlier of a and b, b when a is zero.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// event turns a Status message into an event of the "status" network.
func (d *statusDest) event(m StatusMessage) (bridges.Event, error) {
	// The origin ID is the twin ID, the same whichever payload generation arrives
	// first, so that the other twin, or a mailserver's copy after a restart, is a
	// duplicate in the ledger.
	id, err := twinOrigin(m.TwinID)
	if err != nil {
		return bridges.Event{}, err
	}
	sender, err := bridges.NewRemoteUserID(StatusNetwork, m.AuthorKey)
	if err != nil {
		return bridges.Event{}, err
	}
	// The name is the alias derived from the author's key. A message's ENS name is a
	// claim nobody checked (resolving it needs an Ethereum node): shown, it would let
	// anyone appear as anyone on the other networks (issue 15 finding 5).
	ev := bridges.Event{Kind: bridges.KindMessage, Origin: bridges.Origin{Network: StatusNetwork, Channel: d.rt.status, ID: id},
		Sender: bridges.Sender{ID: sender, Name: m.Alias}, Text: canonicalFromStatus(m.Text), Time: m.Timestamp}
	if m.Sticker && ev.Text == "" {
		ev.Text = "[sticker]"
	}
	if ev.Text == "" {
		ev.Text = "[empty message]"
	}
	if m.ResponseTo != "" {
		// A reply names one payload's id. The ledger knows a Status message by its twin
		// ID, and a puppet's message by the payload ids it was sent with.
		r, err := bridges.NewRemoteMsgID(StatusNetwork, m.ResponseTo)
		if twin, ok := d.chat.TwinOf(m.ResponseTo); ok {
			r, err = twinOrigin(twin)
		}
		if err == nil {
			ev.ReplyTo = r
		}
	}
	if ev.Time.IsZero() || ev.Time.After(m.Sent.Add(24*time.Hour)) {
		ev.Time = m.Sent // the sender's claim is display only; keep it sane
	}
	return ev, ev.Validate()
}

// canonicalFromStatus makes Status text canonical: Status markdown is the canonical
// subset's superset for what Whisper-era clients render, so only line endings,
// control characters and length need fixing.
func canonicalFromStatus(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = strings.Map(func(r rune) rune {
		if bridges.IsControl(r) {
			return -1
		}
		return r
	}, s)
	return bridges.Truncate(s, bridges.MaxTextLen)
}

// StatusMaxTextLen is what one Status message holds, in characters (runes), nick
// prefix included: what Status clients accept.
const StatusMaxTextLen = 4096

// statusLimit is StatusMaxTextLen as a textLimit.
var statusLimit = textLimit{max: StatusMaxTextLen, runes: true}

// statusTexts returns the texts a puppet posts for ev in route rt: statusText, or, when
// that is longer than Status takes, the parts of the text by the route's LongText (an
// edit is cut, never split), each with the prefix. Ingest reserves one clock per text.
func (g *Gateway) statusTexts(rt *route, ev *bridges.Event) []string {
	frame := *ev
	frame.Text = ""
	overhead := utf8.RuneCountInString(g.statusText(&frame))
	policy := rt.LongText
	if ev.Kind == bridges.KindEdit {
		policy = LongTruncate
	}
	parts := splitText(ev.Text, statusLimit, overhead, policy, g.cfg.MaxParts)
	for i, p := range parts {
		frame.Text = p
		parts[i] = g.statusText(&frame)
	}
	return parts
}

// statusText is the text a puppet posts for ev: the nick prefix, then the text.
func (g *Gateway) statusText(ev *bridges.Event) string {
	text := ev.Text
	switch ev.Kind {
	case bridges.KindAction:
		return "* " + g.nick(ev, false) + " " + text
	case bridges.KindEdit:
		text = "(edited) " + text
	}
	if g.cfg.NoNick {
		return text
	}
	return g.nick(ev, true) + text
}

// nick expands the nick format for ev's sender (withFormat) or returns the bare nick.
func (g *Gateway) nick(ev *bridges.Event, withFormat bool) string {
	nick := ev.Sender.Name
	if nick == "" {
		nick = ev.Sender.ID.Local()
	}
	nick = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, nick)
	if !withFormat {
		return nick
	}
	return expandNick(g.cfg.NickFormat, nick, ev.Origin.Network, string(ev.Origin.Channel))
}

// expandNick replaces {nick}, {network} and {channel} in format in one pass, left to
// right, as strings.NewReplacer does (a value is never expanded again), without
// building a replacer per message: that was 5.8 KB of garbage a message, 14% of the
// gateway's allocation in Puppets10K.
func expandNick(format, nick, network, channel string) string {
	var b strings.Builder
	b.Grow(len(format) + len(nick))
	for {
		i := strings.IndexByte(format, '{')
		if i < 0 {
			b.WriteString(format)
			return b.String()
		}
		b.WriteString(format[:i])
		format = format[i:]
		switch {
		case strings.HasPrefix(format, "{nick}"):
			b.WriteString(nick)
			format = format[len("{nick}"):]
		case strings.HasPrefix(format, "{network}"):
			b.WriteString(network)
			format = format[len("{network}"):]
		case strings.HasPrefix(format, "{channel}"):
			b.WriteString(channel)
			format = format[len("{channel}"):]
		default:
			b.WriteByte('{')
			format = format[1:]
		}
	}
}

// markOurs records the chat key of a puppet this process speaks as.
func (g *Gateway) markOurs(chatKey string) {
	g.mu.Lock()
	g.addOursLocked(chatKey)
	delete(g.notOur, chatKey)
	g.mu.Unlock()
}

// addOursLocked caches chatKey as a puppet's, clearing the cache when full. Caller
// holds g.mu.
func (g *Gateway) addOursLocked(chatKey string) {
	if !g.ours[chatKey] && len(g.ours) >= g.oursLimit {
		clear(g.ours)
	}
	g.ours[chatKey] = true
}

// isOurs reports whether chatKey is the gateway's own key or any puppet's (loop
// prevention by identity). Puppets of earlier runs are found in the registry; keys
// found to be no puppet are remembered, up to notOursLimit.
func (g *Gateway) isOurs(ctx context.Context, chatKey string) bool {
	if g.ownKeys[chatKey] {
		return true
	}
	g.mu.Lock()
	ours, known := g.ours[chatKey], g.notOur[chatKey]
	g.mu.Unlock()
	if ours {
		return true
	}
	if known {
		return false
	}
	recs, err := g.puppets.Whois(ctx, chatKey)
	if err != nil {
		// Unknown is treated as not ours: the processed-ID check still stops an echo.
		g.log.Warn("puppet lookup failed", "key", chatKey, "err", err)
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(recs) > 0 {
		g.addOursLocked(chatKey)
		return true
	}
	if len(g.notOur) >= notOursLimit {
		clear(g.notOur)
	}
	g.notOur[chatKey] = true
	return false
}
