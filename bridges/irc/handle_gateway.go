package irc

import (
	"context"
	"fmt"

	"github.com/lrstanley/girc"

	"github.com/statusgate/statusgate/bridges"
)

// Send posts out.Event as "<nick> text" lines (KindAction as CTCP ACTION "nick text",
// KindNotice as NOTICE) to out.Channel. It blocks for a queue slot and for the token
// bucket (back-pressure), returns an error wrapping bridges.ErrTransient when the
// connection is down or the channel not joined, and a permanent error for an unknown
// channel or an event kind IRC cannot show. Receipt.ID is name:out/<out.Key>.
//
// Limit: IRC acknowledges nothing, so lines written just before a connection drops
// may be lost on the way (echo-message/labeled-response would close that gap).
func (c *Connector) Send(ctx context.Context, out bridges.Outbound) (bridges.Receipt, error) {
	channel, ok := c.channels[out.Channel]
	if !ok {
		return bridges.Receipt{}, bridges.Permanent(fmt.Errorf("send to %s: %w", out.Channel, ErrUnknownChannel))
	}
	var rcpt bridges.Receipt
	if out.Key != "" {
		id, err := receiptID(c.cfg.Name, out.Key)
		if err != nil {
			return bridges.Receipt{}, bridges.Permanent(fmt.Errorf("send to %s: key: %w", out.Channel, err))
		}
		rcpt.ID = id
	}
	ev := out.Event
	if ev.Kind != bridges.KindMessage && ev.Kind != bridges.KindAction && ev.Kind != bridges.KindNotice {
		return bridges.Receipt{}, fmt.Errorf("send %s to %s: %w", ev.Kind, out.Channel, bridges.ErrUnsupported)
	}

	select { // a bounded queue: wait for a slot rather than drop
	case c.queue <- struct{}{}:
	case <-ctx.Done():
		return bridges.Receipt{}, ctx.Err()
	}
	defer func() { <-c.queue }()

	s := c.cur.Load()
	if s == nil || !s.isJoined(channel) {
		return bridges.Receipt{}, fmt.Errorf("send to %s: %w: %w", out.Channel, bridges.ErrTransient, ErrNotConnected)
	}
	nick := relayNick(ev.Sender.Name, c.cfg.AntiPing)
	action := ev.Kind == bridges.KindAction
	prefix := "<" + nick + "> "
	if action {
		prefix = nick + " "
	}
	// Budget for the longest nick the server may give us, not just the current one.
	own := max(len(s.client.GetNick()), maxNickLen)
	lines := shape(ev.Text, prefix, wireBudget(own, c.cfg.User, channel, action), c.cfg.MaxLines)
	cmd := girc.PRIVMSG
	if ev.Kind == bridges.KindNotice {
		cmd = girc.NOTICE
	}
	for i, line := range lines {
		if err := c.limiter.Wait(ctx); err != nil {
			return bridges.Receipt{}, fmt.Errorf("send to %s: line %d/%d: %w", out.Channel, i+1, len(lines), err)
		}
		if c.cur.Load() != s || !s.isJoined(channel) || !s.client.IsConnected() {
			return bridges.Receipt{}, fmt.Errorf("send to %s: line %d/%d: %w: %w", out.Channel, i+1, len(lines), bridges.ErrTransient, ErrNotConnected)
		}
		if action {
			line = "\x01ACTION " + line + "\x01"
		}
		s.client.Send(&girc.Event{Command: cmd, Params: []string{channel, line}})
	}
	c.log.Load().Debug("irc sent", "chat", channel, "lines", len(lines), "msg_id", rcpt.ID)
	return rcpt, nil
}
