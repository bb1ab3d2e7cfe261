package matrix

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/statusgate/statusgate/bridges"
)

// Send posts out.Event as the ghost of its author: registered, joined and named on
// first use (cached), then an m.text (m.emote for KindAction, m.notice for KindNotice)
// with body and escaped formatted_body, replying to out.ReplyTo. out.Key is the
// transaction ID, so a retry returns the event of the first attempt. An event at least
// massageAfter old (catch-up) is sent with its own time (appservice ts massaging).
func (c *Connector) Send(ctx context.Context, out bridges.Outbound) (bridges.Receipt, error) {
	room, err := c.roomOf(out.Channel)
	if err != nil {
		return bridges.Receipt{}, err
	}
	ghost, text, err := c.ghostOrBot(ctx, out.Event, room)
	if err != nil {
		return bridges.Receipt{}, err
	}
	content := messageContent(out.Event.Kind, text)
	if r := eventID(c.cfg.Name, out.ReplyTo); r != "" {
		content.RelatesTo = &event.RelatesTo{InReplyTo: &event.InReplyTo{EventID: r}}
	}
	return c.sendMessage(ctx, ghost, room, content, mautrix.ReqSendEvent{TransactionID: out.Key, Timestamp: c.massagedTS(out.Event.Time)})
}

// Edit posts an m.replace of out.Target as the author's ghost. Receipt.ID is the edit
// event's own ID.
func (c *Connector) Edit(ctx context.Context, out bridges.Outbound) (bridges.Receipt, error) {
	room, err := c.roomOf(out.Channel)
	if err != nil {
		return bridges.Receipt{}, err
	}
	target := eventID(c.cfg.Name, out.Target)
	if target == "" {
		return bridges.Receipt{}, bridges.Permanent(fmt.Errorf("edit in %s: target %q is not a matrix event", out.Channel, out.Target))
	}
	ghost, text, err := c.ghostOrBot(ctx, out.Event, room)
	if err != nil {
		return bridges.Receipt{}, err
	}
	nc := messageContent(bridges.KindMessage, text)
	content := &event.MessageEventContent{
		MsgType: nc.MsgType, Body: "* " + nc.Body, Format: nc.Format, FormattedBody: "* " + nc.FormattedBody,
		NewContent: nc, RelatesTo: &event.RelatesTo{Type: event.RelReplace, EventID: target},
	}
	return c.sendMessage(ctx, ghost, room, content, mautrix.ReqSendEvent{TransactionID: out.Key})
}

// Redact redacts out.Target as the author's ghost, falling back to the bot (which has
// power in the rooms it created) when the ghost may not. An event already gone is
// success.
func (c *Connector) Redact(ctx context.Context, out bridges.Outbound) error {
	room, err := c.roomOf(out.Channel)
	if err != nil {
		return err
	}
	target := eventID(c.cfg.Name, out.Target)
	if target == "" {
		return bridges.Permanent(fmt.Errorf("redact in %s: target %q is not a matrix event", out.Channel, out.Target))
	}
	ghost, _, err := c.ghostOrBot(ctx, out.Event, room)
	if err != nil {
		return err
	}
	err = c.withRateLimit(ctx, func() error {
		_, err := ghost.Client.RedactEvent(ctx, room, target, mautrix.ReqRedact{TxnID: out.Key})
		return err
	})
	if errors.Is(err, mautrix.MForbidden) {
		err = c.withRateLimit(ctx, func() error {
			_, err := c.appservice().BotIntent().Client.RedactEvent(ctx, room, target, mautrix.ReqRedact{TxnID: out.Key})
			return err
		})
	}
	if errors.Is(err, mautrix.MNotFound) {
		return nil
	}
	return c.classify(err, "redact", room)
}

// massageAfter is the age from which a gateway event counts as catch-up (mailserver
// history, an outbox draining after an outage): it is sent with its original time.
const massageAfter = 5 * time.Second

// massagedTS returns t in Unix milliseconds for the appservice ts query parameter when
// t is at least massageAfter old, else 0 (the homeserver's own time). A time in the
// future or before 2000 is not massaged.
func (c *Connector) massagedTS(t time.Time) int64 {
	if t.IsZero() || t.Year() < 2000 || c.now().Sub(t) < massageAfter {
		return 0
	}
	return t.UnixMilli()
}

// sendMessage sends content as ghost; req carries the transaction ID (the outbox key:
// a retry returns the first attempt's event) and the massaged timestamp, if any.
func (c *Connector) sendMessage(ctx context.Context, ghost *appservice.IntentAPI, room id.RoomID, content *event.MessageEventContent, req mautrix.ReqSendEvent) (bridges.Receipt, error) {
	var resp *mautrix.RespSendEvent
	err := c.withRateLimit(ctx, func() (err error) {
		resp, err = ghost.Client.SendMessageEvent(ctx, room, event.EventMessage, content, req)
		return err
	})
	if err != nil {
		return bridges.Receipt{}, c.classify(err, "send", room)
	}
	mid, err := msgID(c.cfg.Name, resp.EventID)
	if err != nil {
		return bridges.Receipt{}, bridges.Permanent(fmt.Errorf("send to %s: event ID %q: %w", room, resp.EventID, err))
	}
	return bridges.Receipt{ID: mid}, nil
}

// roomOf returns the portal room of ch.
func (c *Connector) roomOf(ch bridges.ChannelID) (id.RoomID, error) {
	if ch.Network() != c.cfg.Name {
		return "", bridges.Permanent(fmt.Errorf("%w: %s", ErrUnknownChannel, ch))
	}
	c.mu.Lock()
	room, ok := c.rooms[ch.Local()]
	c.mu.Unlock()
	if ok && !c.up.Load() {
		return "", fmt.Errorf("%w: %w: no session: %s", bridges.ErrTransient, ErrNotReady, ch)
	}
	if ok {
		return room, nil
	}
	for _, r := range c.cfg.Rooms {
		if r.Chat == ch.Local() {
			return "", fmt.Errorf("%w: %w: %s", bridges.ErrTransient, ErrNotReady, ch)
		}
	}
	return "", bridges.Permanent(fmt.Errorf("%w: %s", ErrUnknownChannel, ch))
}

// ghostOrBot returns the intent of ev's author's ghost (ghost) and ev's text; when the
// ghost would be new and the ghost budget is spent (Config.NewGhostsPerMinute), the
// bot's intent and the text prefixed with the author's name, as a relay bot shows it.
func (c *Connector) ghostOrBot(ctx context.Context, ev bridges.Event, room id.RoomID) (*appservice.IntentAPI, string, error) {
	ghost, err := c.ghost(ctx, ev.Sender, room)
	if !errors.Is(err, ErrGhostLimit) {
		return ghost, ev.Text, err
	}
	c.log.Info("new ghost budget spent; posting through the bot", "sender", ev.Sender.ID, "room", room)
	name := bridges.Escape(ghostName(ev.Sender))
	if ev.Kind == bridges.KindAction {
		return c.appservice().BotIntent(), name + " " + ev.Text, nil
	}
	return c.appservice().BotIntent(), `\<` + name + `\> ` + ev.Text, nil
}

// ghost returns the intent of the author's ghost, registered, joined to room and with
// the author's display name (set when it differs from the one set last) and, with
// Config.AvatarURLBase, an avatar (ensureAvatar).
func (c *Connector) ghost(ctx context.Context, s bridges.Sender, room id.RoomID) (*appservice.IntentAPI, error) {
	if s.ID == "" {
		return nil, bridges.Permanent(fmt.Errorf("send to %s: no sender", room))
	}
	uid := id.NewUserID(ghostLocalpart(c.cfg.GhostPrefix, s.ID), c.cfg.ServerName)
	intent := c.appservice().Intent(uid)
	if intent == nil {
		return nil, bridges.Permanent(fmt.Errorf("ghost %s: not in our server", uid))
	}
	name := ghostName(s)
	c.mu.Lock()
	have, named := c.ghosts[uid]
	c.mu.Unlock()
	if err := c.withRateLimit(ctx, func() error { return c.ensureGhost(ctx, intent) }); err != nil {
		if errors.Is(err, ErrGhostLimit) {
			return nil, err
		}
		return nil, c.classify(err, "register ghost "+string(uid), room)
	}
	if !named || have != name {
		err := c.withRateLimit(ctx, func() error { return intent.Client.SetDisplayName(ctx, name) })
		if err != nil {
			return nil, c.classify(err, "set display name of "+string(uid), room)
		}
		c.mu.Lock()
		if _, ok := c.ghosts[uid]; !ok && len(c.ghosts) >= c.ghostCache {
			clear(c.ghosts) // maxGhosts
		}
		c.ghosts[uid] = name
		c.mu.Unlock()
	}
	c.ensureAvatar(ctx, intent, uid, s.ID)
	if err := c.withRateLimit(ctx, func() error { return c.ensureJoined(ctx, intent, room) }); err != nil {
		return nil, c.classify(err, "join ghost "+string(uid), room)
	}
	return intent, nil
}

// ghostName is the display name of a ghost: the sender's name, control characters
// removed, at most 100 runes; "Status user" when empty.
func ghostName(s bridges.Sender) string {
	name := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s.Name, ""))
	if r := []rune(strings.TrimSpace(name)); len(r) > 100 {
		name = string(r[:100])
	}
	if strings.TrimSpace(name) == "" {
		return "Status user"
	}
	return strings.TrimSpace(name)
}

// withRateLimit runs op, and again after retry_after_ms as long as the homeserver
// answers 429 and the wait fits ctx's deadline; otherwise it returns an error wrapping
// ErrRateLimited.
func (c *Connector) withRateLimit(ctx context.Context, op func() error) error {
	for {
		err := op()
		wait, limited := retryAfter(err)
		if !limited {
			return err
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return fmt.Errorf("%w: %w: retry after %s: %w", bridges.ErrTransient, ErrRateLimited, wait, err)
		}
		c.log.Debug("rate limited by the homeserver", "wait", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w: %w: %w", bridges.ErrTransient, ErrRateLimited, ctx.Err())
		case <-t.C:
		}
	}
}

// retryAfter reports whether err is a 429, and how long the homeserver asked to wait
// (default 1 s, at most 1 min).
func retryAfter(err error) (time.Duration, bool) {
	var he mautrix.HTTPError
	if err == nil || !errors.As(err, &he) || he.RespError == nil ||
		(he.RespError.StatusCode != http.StatusTooManyRequests && he.RespError.ErrCode != "M_LIMIT_EXCEEDED") {
		return 0, false
	}
	wait := time.Second
	if ms, ok := he.RespError.ExtraData["retry_after_ms"].(float64); ok && ms >= 0 {
		wait = time.Duration(ms) * time.Millisecond
	}
	return min(wait, time.Minute), true
}

// classify wraps a homeserver error for the gateway: a room that is gone or forbids
// us, and requests the homeserver rejects as malformed, are permanent; everything else
// (network, 5xx, tokens, rate limits) is transient.
func (c *Connector) classify(err error, what string, room id.RoomID) error {
	if err == nil {
		return nil
	}
	err = fmt.Errorf("%s in %s: %w", what, room, err)
	var he mautrix.HTTPError
	if errors.As(err, &he) && he.RespError != nil {
		switch he.RespError.ErrCode {
		case "M_UNKNOWN_TOKEN", "M_MISSING_TOKEN", "M_LIMIT_EXCEEDED":
			return fmt.Errorf("%w: %w", bridges.ErrTransient, err)
		case "M_FORBIDDEN", "M_NOT_FOUND", "M_BAD_JSON", "M_NOT_JSON", "M_TOO_LARGE", "M_INVALID_PARAM", "M_UNKNOWN_ROOM":
			return bridges.Permanent(err)
		}
		if s := he.RespError.StatusCode; s >= 400 && s < 500 && s != http.StatusTooManyRequests && s != http.StatusUnauthorized && s != http.StatusRequestTimeout {
			return bridges.Permanent(err)
		}
	}
	return fmt.Errorf("%w: %w", bridges.ErrTransient, err)
}
