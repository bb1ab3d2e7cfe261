package gateway

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/core/status"
)

// notOursLimit bounds the negative cache of chat keys found to be no puppet.
const notOursLimit = 10_000

// readStatus relays the messages of one route's chat until the chat closes.
func (g *Gateway) readStatus(ctx context.Context, rt *route, ch *status.Chat) {
	if g.joined != nil {
		go g.joined(ctx, ch) // owned by the chat: it returns when ctx ends
	}
	for m := range ch.Messages() {
		if g.isOurs(ctx, m.AuthorKey) {
			g.m.dropped.WithLabelValues(dropLoop).Inc()
			continue
		}
		// Flood control on the envelope's time, not the arrival: a mailserver catch-up
		// delivers hours of a chat at once, each message at the time it was sent.
		if ok, reason := g.limits.allow(StatusNetwork, StatusNetwork+":"+m.AuthorKey, earliest(m.Sent, g.cfg.Clock())); !ok {
			g.m.dropped.WithLabelValues(reason).Inc()
			g.limits.dropped(StatusNetwork, StatusNetwork+":"+m.AuthorKey, reason, g.cfg.Clock(), "chat", rt.Chat)
			continue
		}
		ev, err := g.statusEvent(rt, ch, m)
		if err != nil {
			g.log.Warn("status message not relayable", "chat", rt.Chat, "id", m.ID.String(), "err", err)
			continue
		}
		if len(g.destinations(rt, &ev)) == 0 {
			continue
		}
		// The real id is an alias of the twin origin: a remote reply to the message maps
		// back to an id Status clients know.
		if err := g.ingest(ctx, rt, ev, false, StatusNetwork+":"+m.ID.String()); err != nil {
			// Only when ctx ended: the message is recovered by the mailserver catch-up
			// after restart (and deduplicated if it did get in).
			g.log.Warn("status message not persisted", "chat", rt.Chat, "id", m.ID.String(), "err", err)
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

// statusEvent turns a Status message into an event of the "status" network.
func (g *Gateway) statusEvent(rt *route, ch *status.Chat, m *status.Message) (bridges.Event, error) {
	// The origin ID is the twin ID, the same whichever payload generation arrives
	// first, so that the other twin, or a mailserver's copy after a restart, is a
	// duplicate in the ledger.
	id, err := twinOrigin(m.TwinID.String())
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
	ev := bridges.Event{Kind: bridges.KindMessage, Origin: bridges.Origin{Network: StatusNetwork, Channel: rt.status, ID: id},
		Sender: bridges.Sender{ID: sender, Name: m.Alias}, Text: canonicalFromStatus(m.Text), Time: m.Timestamp}
	if m.Sticker != nil && ev.Text == "" {
		ev.Text = "[sticker]"
	}
	if ev.Text == "" {
		ev.Text = "[empty message]"
	}
	if m.ResponseTo != "" {
		// A reply names one payload's real id. The ledger knows a Status message by its
		// twin ID, and a puppet's message by the real ids it was sent with.
		r, err := bridges.NewRemoteMsgID(StatusNetwork, m.ResponseTo)
		if twin, ok := ch.TwinOf(m.ResponseTo); ok {
			r, err = twinOrigin(twin.String())
		}
		if err == nil {
			ev.ReplyTo = r
		}
	}
	if ev.Time.IsZero() || ev.Time.After(m.Sent.Add(24*60*60*1e9)) {
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

// statusLimit is what one Status message holds: characters, nick prefix included.
var statusLimit = textLimit{max: status.MaxTextLength, runes: true}

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
	return strings.NewReplacer("{nick}", nick, "{network}", ev.Origin.Network,
		"{channel}", string(ev.Origin.Channel)).Replace(g.cfg.NickFormat)
}

// markOurs records the chat key of a puppet this process speaks as.
func (g *Gateway) markOurs(chatKey string) {
	g.mu.Lock()
	g.ours[chatKey] = true
	delete(g.notOur, chatKey)
	g.mu.Unlock()
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
		g.ours[chatKey] = true
		return true
	}
	if len(g.notOur) >= notOursLimit {
		clear(g.notOur)
	}
	g.notOur[chatKey] = true
	return false
}

// twinOrigin is the origin ID of the Status message whose twin ID is twin.
func twinOrigin(twin string) (bridges.RemoteMsgID, error) {
	return bridges.NewRemoteMsgID(StatusNetwork, "twin-"+twin)
}
