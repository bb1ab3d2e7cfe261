package matrix

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/statusgate/statusgate/bridges"
)

// handleEvent turns one event of a transaction into a bridges.Event and delivers it. It
// returns an error only when the event should be delivered again (Deliver failed for
// a reason other than an invalid event); unparseable or uninteresting events are
// logged and skipped.
func (c *Connector) handleEvent(ctx context.Context, raw json.RawMessage) error {
	var evt event.Event
	if err := json.Unmarshal(raw, &evt); err != nil {
		c.log.Debug("skip unparseable event", "err", err)
		return nil
	}
	if evt.StateKey != nil {
		evt.Type.Class = event.StateEventType
	} else {
		evt.Type.Class = event.MessageEventType
	}
	if err := evt.Content.ParseRaw(evt.Type); err != nil && !errors.Is(err, event.ErrUnsupportedContentType) {
		c.log.Debug("skip event with bad content", "event", evt.ID, "type", evt.Type.Type, "err", err)
		return nil
	}
	c.log.Debug("event", "event", evt.ID, "type", evt.Type.Type, "sender", evt.Sender, "room", evt.RoomID)
	c.mu.Lock()
	chat, ok := c.chats[evt.RoomID]
	c.mu.Unlock()
	if evt.Type == event.StateMember {
		c.noteMember(ctx, &evt)
	}
	if !ok || c.isOurs(evt.Sender) {
		return nil // not a portal, or our own echo (loop prevention by identity)
	}
	ev, ok := c.toEvent(ctx, chat, &evt)
	if !ok {
		return nil
	}
	err := c.host.Deliver(ctx, ev)
	if errors.Is(err, bridges.ErrInvalidEvent) {
		c.log.Warn("gateway refused event", "event", evt.ID, "err", err)
		return nil
	}
	return err
}

// isOurs reports whether u is the bot or one of our ghosts.
func (c *Connector) isOurs(u id.UserID) bool {
	local, server, err := u.Parse()
	if err != nil || server != c.cfg.ServerName {
		return false
	}
	return local == c.cfg.BotLocalpart || strings.HasPrefix(local, c.cfg.GhostPrefix)
}

// noteMember keeps the display name cache and the appservice state store current.
func (c *Connector) noteMember(ctx context.Context, evt *event.Event) {
	m := evt.Content.AsMember()
	user := id.UserID(*evt.StateKey)
	c.stateMu.Lock()
	_ = c.appservice().StateStore.SetMembership(ctx, evt.RoomID, user, m.Membership)
	c.noteStateLocked()
	c.stateMu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.names) >= maxNames {
		clear(c.names)
	}
	if m.Membership == event.MembershipJoin && m.Displayname != "" {
		c.names[nameKey{evt.RoomID, user}] = m.Displayname
	} else {
		delete(c.names, nameKey{evt.RoomID, user})
	}
}

// toEvent converts a message or redaction event; ok is false for anything else.
func (c *Connector) toEvent(ctx context.Context, chat string, evt *event.Event) (bridges.Event, bool) {
	net := c.cfg.Name
	ch, err1 := channelID(net, chat)
	sender, err2 := userID(net, evt.Sender)
	mid, err3 := msgID(net, evt.ID)
	if err := errors.Join(err1, err2, err3); err != nil {
		c.log.Debug("skip event with bad IDs", "event", evt.ID, "err", err)
		return bridges.Event{}, false
	}
	ev := bridges.Event{
		Origin: bridges.Origin{Network: net, Channel: ch, ID: mid},
		Sender: bridges.Sender{ID: sender},
		Time:   time.UnixMilli(evt.Timestamp),
	}
	if evt.Timestamp == 0 {
		ev.Time = time.Now()
	}
	switch evt.Type {
	case event.EventRedaction:
		target := evt.Redacts
		if target == "" {
			target = evt.Content.AsRedaction().Redacts
		}
		t, err := msgID(net, target)
		if err != nil {
			return bridges.Event{}, false
		}
		ev.Kind, ev.Target = bridges.KindDelete, t
		// Matrix accepts anyone's redaction into a room; it takes effect when its sender
		// wrote the target or has the room's redact power level. The gateway lets
		// through the author's own deletes; for others' it needs to know the power.
		ev.Sender.Moderator = c.mayRedactOthers(ctx, evt.RoomID, evt.Sender)
	case event.EventMessage:
		m := evt.Content.AsMessage()
		rel := m.RelatesTo
		if rel != nil && rel.Type == event.RelReplace && rel.EventID != "" {
			t, err := msgID(net, rel.EventID)
			if err != nil {
				return bridges.Event{}, false
			}
			nc := m.NewContent
			if nc == nil {
				nc = m
			}
			ev.Kind, ev.Target, ev.Text = bridges.KindEdit, t, messageText(nc, false)
		} else {
			switch m.MsgType {
			case event.MsgEmote:
				ev.Kind = bridges.KindAction
			case event.MsgNotice:
				ev.Kind = bridges.KindNotice
			default:
				ev.Kind = bridges.KindMessage
			}
			reply := rel != nil && rel.InReplyTo != nil && rel.InReplyTo.EventID != ""
			if reply {
				if r, err := msgID(net, rel.InReplyTo.EventID); err == nil {
					ev.ReplyTo = r
				}
			}
			ev.Text = messageText(m, reply)
		}
		if ev.Text == "" {
			return bridges.Event{}, false
		}
	default:
		return bridges.Event{}, false
	}
	ev.Sender.Name = c.displayName(ctx, evt.RoomID, evt.Sender)
	return ev, true
}

// mayRedactOthers reports whether u's power level in room reaches the room's redact
// level (from the room's current m.room.power_levels, read by the bot). When the state
// cannot be read it reports false: only the author's own deletes go through.
func (c *Connector) mayRedactOthers(ctx context.Context, room id.RoomID, u id.UserID) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var pl event.PowerLevelsEventContent
	c.stateMu.Lock() // the client may update the shared state store
	err := c.appservice().BotIntent().Client.StateEvent(ctx, room, event.StatePowerLevels, "", &pl)
	c.stateMu.Unlock()
	if err != nil {
		c.log.Warn("power levels unreadable; treating the redaction as the sender's own", "room", room, "sender", u, "err", err)
		return false
	}
	return pl.GetUserLevel(u) >= pl.Redact()
}

// messageText is the canonical text of a message: formatted_body when it is HTML,
// else the body; reply fallbacks are stripped; non-text message types show their body
// (a file name) as plain text.
func messageText(m *event.MessageEventContent, reply bool) string {
	switch m.MsgType {
	case event.MsgText, event.MsgNotice, event.MsgEmote, "":
	default:
		return plainToCanonical(m.Body)
	}
	if m.Format == event.FormatHTML && m.FormattedBody != "" {
		if s := htmlToCanonical(m.FormattedBody); s != "" {
			return s
		}
	}
	body := m.Body
	if reply {
		body = stripReplyFallback(body)
	}
	return plainToCanonical(body)
}

// stripReplyFallback removes the "> <@user> quoted" lines and the blank line after them
// that older clients put before a reply's text.
func stripReplyFallback(s string) string {
	if !strings.HasPrefix(s, "> <") {
		return s
	}
	lines := strings.Split(s, "\n")
	i := 0
	for i < len(lines) && strings.HasPrefix(lines[i], ">") {
		i++
	}
	if i < len(lines) && lines[i] == "" {
		i++
	}
	return strings.Join(lines[i:], "\n")
}

// displayName returns the user's display name in room: from the member events seen,
// else the room state, else the profile, else the local part; cached.
func (c *Connector) displayName(ctx context.Context, room id.RoomID, u id.UserID) string {
	key := nameKey{room, u}
	c.mu.Lock()
	name, ok := c.names[key]
	c.mu.Unlock()
	if ok {
		return name
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var m event.MemberEventContent
	c.stateMu.Lock() // the client may update the shared state store
	defer c.stateMu.Unlock()
	if err := c.appservice().BotIntent().Client.StateEvent(ctx, room, event.StateMember, string(u), &m); err == nil && m.Displayname != "" {
		name = m.Displayname
	} else if p, err := c.appservice().BotIntent().GetDisplayName(ctx, u); err == nil && p.DisplayName != "" {
		name = p.DisplayName
	} else {
		return u.Localpart() // not cached: a later lookup may succeed
	}
	c.mu.Lock()
	if len(c.names) >= maxNames {
		clear(c.names)
	}
	c.names[key] = name
	c.mu.Unlock()
	return name
}
