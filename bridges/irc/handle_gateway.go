package irc

import (
	"context"
	"fmt"

	"github.com/lrstanley/girc"
	"golang.org/x/time/rate"

	"github.com/statusgate/statusgate/bridges"
)

// editMaxLines caps a correction: an edit is shown as a short "* correction:" line,
// not a second copy of a long message.
const editMaxLines = 3

// correctionMark starts the text of an edit after the "<nick> " prefix.
const correctionMark = "* correction: "

// Send posts out.Event as "<nick> text" lines (KindAction as CTCP ACTION "nick text",
// KindNotice as NOTICE) to out.Channel, or, with Config.Ghosts, as plain lines from
// the sender's ghost connection when it has one in the channel (ghost.go). It blocks for a queue slot and for the token
// bucket (back-pressure), returns an error wrapping bridges.ErrTransient when the
// connection is down or the channel not joined, and a permanent error for an unknown
// channel or an event kind IRC cannot show. Receipt.ID is name:out/<out.Key>; a key
// posted already (among the latest 4,096) is not posted again.
//
// Delivery: after the lines, Send writes "PING :<token>" and returns nil only once the
// server answered with the matching PONG (barrier.go): a server handles a connection's
// commands in order, so the PONG proves it read every line. If the connection drops
// first, Send returns an error wrapping bridges.ErrTransient and the gateway retries
// the whole message: delivery is at least once, and a retry repeats the lines the
// server did read before the drop (all, some or none of them; IRC cannot say which).
// "Read by the server" is the proof: the server may still fail to relay a line to
// some users (a netsplit, a ban), which IRC never reports.
func (c *Connector) Send(ctx context.Context, out bridges.Outbound) (bridges.Receipt, error) {
	ev := out.Event
	if ev.Kind != bridges.KindMessage && ev.Kind != bridges.KindAction && ev.Kind != bridges.KindNotice {
		return bridges.Receipt{}, fmt.Errorf("send %s to %s: %w", ev.Kind, out.Channel, bridges.ErrUnsupported)
	}
	return c.post(ctx, out, ev.Kind, "", c.cfg.MaxLines)
}

// Edit shows a KindEdit as a short correction, "<nick> * correction: new text" (IRC
// cannot change a line once sent), shaped and capped like Send but at no more than
// editMaxLines lines. It is called like Send and its errors are classified the same
// way. Receipt.ID is name:out/<out.Key>, like a Send of the same key: the correction
// is a message of its own, and a retry gets the same ID.
func (c *Connector) Edit(ctx context.Context, out bridges.Outbound) (bridges.Receipt, error) {
	if out.Event.Kind != bridges.KindEdit {
		return bridges.Receipt{}, fmt.Errorf("edit %s in %s: %w", out.Event.Kind, out.Channel, bridges.ErrUnsupported)
	}
	return c.post(ctx, out, bridges.KindMessage, correctionMark, min(c.cfg.MaxLines, editMaxLines))
}

// post writes out.Event.Text as kind (message, action or notice) lines that start with
// the sender's prefix and mark, at most maxLines of them: from the sender's ghost
// (ghost.go) without the "<nick>" prefix when there is one, else from the relay
// connection.
func (c *Connector) post(ctx context.Context, out bridges.Outbound, kind bridges.Kind, mark string, maxLines int) (bridges.Receipt, error) {
	channel, ok := c.channels[out.Channel]
	if !ok {
		return bridges.Receipt{}, bridges.Permanent(fmt.Errorf("send to %s: %w", out.Channel, ErrUnknownChannel))
	}
	var rcpt bridges.Receipt
	if out.Key != "" {
		if r, ok := c.sent.Get(sentKey(out)); ok {
			return r, nil // posted already: a retry after a lost answer
		}
		id, err := receiptID(c.cfg.Name, out.Key)
		if err != nil {
			return bridges.Receipt{}, bridges.Permanent(fmt.Errorf("send to %s: key: %w", out.Channel, err))
		}
		rcpt.ID = id
	}
	ev := out.Event

	select { // a bounded queue: wait for a slot rather than drop
	case c.queue <- struct{}{}:
	case <-ctx.Done():
		return bridges.Receipt{}, ctx.Err()
	}
	defer func() { <-c.queue }()

	action := kind == bridges.KindAction
	w := lineWriter{channel: channel, action: action, cmd: girc.PRIVMSG}
	if kind == bridges.KindNotice {
		w.cmd = girc.NOTICE
	}
	var prefix string
	if p := c.ghostFor(ctx, ev.Sender, channel); p != nil {
		defer p.release(c.now())
		w.client, w.bar, w.limiter = p.client, p.bar, p.limiter
		w.alive = func() bool { return p.isJoined(channel) }
		prefix = mark
	} else {
		s := c.cur.Load()
		if s == nil || !s.isJoined(channel) {
			return bridges.Receipt{}, fmt.Errorf("send to %s: %w: %w", out.Channel, bridges.ErrTransient, ErrNotConnected)
		}
		w.client, w.bar, w.limiter = s.client, s.bar, c.limiter
		w.alive = func() bool { return c.cur.Load() == s && s.isJoined(channel) && s.client.IsConnected() }
		nick := relayNick(ev.Sender.Name, c.cfg.AntiPing)
		prefix = "<" + nick + "> " + mark
		if action {
			prefix = nick + " "
		}
	}
	// Budget for the longest nick the server may give us, not just the current one.
	own := max(len(w.client.GetNick()), maxNickLen)
	budget := min(wireBudget(own, c.cfg.User, channel, action), gircBudget(w.client.MaxEventLength(), w.cmd, channel, action))
	lines := shape(ev.Text, prefix, budget, maxLines)
	if err := c.write(ctx, w, lines); err != nil {
		return bridges.Receipt{}, fmt.Errorf("send to %s: %w", out.Channel, err)
	}
	c.sent.Put(sentKey(out), rcpt)
	c.log.Load().Debug("irc sent", "chat", channel, "kind", ev.Kind, "lines", len(lines), "msg_id", rcpt.ID, "ghost", prefix == mark)
	return rcpt, nil
}

// sentKey is out's key in the memory of posted keys: per channel, so that a key is
// never taken for another channel's.
func sentKey(out bridges.Outbound) string {
	if out.Key == "" {
		return ""
	}
	return string(out.Channel) + " " + out.Key
}

// ghostFor returns the sender's ghost, in channel and marked busy, or nil for the
// relay connection (ghosts off, over the cap, still connecting).
func (c *Connector) ghostFor(ctx context.Context, sender bridges.Sender, channel string) *ghost {
	if !c.cfg.Ghosts.Enabled {
		return nil
	}
	return c.ghosts.acquire(ctx, sender, channel)
}

// lineWriter is where post writes: a connection, its bucket and barrier, and the
// command.
type lineWriter struct {
	client  *girc.Client
	bar     *barrier
	limiter *rate.Limiter
	alive   func() bool // the connection is up and in channel
	channel string
	cmd     string
	action  bool
}

// write writes lines through w's bucket, then waits for w's barrier (barrier.go).
func (c *Connector) write(ctx context.Context, w lineWriter, lines []string) error {
	for i, line := range lines {
		if err := w.limiter.Wait(ctx); err != nil {
			return fmt.Errorf("line %d/%d: %w", i+1, len(lines), err)
		}
		if !w.alive() {
			return fmt.Errorf("line %d/%d: %w: %w", i+1, len(lines), bridges.ErrTransient, ErrNotConnected)
		}
		if w.action {
			line = "\x01ACTION " + line + "\x01"
		}
		w.client.Send(&girc.Event{Command: w.cmd, Params: []string{w.channel, line}})
	}
	upto := w.bar.wrote(len(lines))
	if c.testHookWritten != nil {
		c.testHookWritten()
	}
	if err := w.bar.wait(ctx, upto); err != nil {
		return fmt.Errorf("await the server's PONG: %w: %w", bridges.ErrTransient, err)
	}
	return nil
}

// gircBudget is the longest text girc's Send writes as one line: it splits a PRIVMSG or
// NOTICE of maxEvent bytes or more (its own estimate of the server's limit, from
// ISUPPORT) at word boundaries, which would cut the "<nick>" prefix off the rest. The
// connector shapes every line below it, so girc never splits.
func gircBudget(maxEvent int, cmd, channel string, action bool) int {
	n := maxEvent - len(cmd+" "+channel+" :") - 1
	if action {
		n -= len("\x01ACTION \x01")
	}
	return n
}
