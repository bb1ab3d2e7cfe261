package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/records"
)

// destination is where one outbox delivers: a route's Status chat (statusDest) or a
// connector's channel (connDest). The outbox knows nothing else of either.
type destination interface {
	// reserve is called at ingest, once per event for this destination, and returns
	// what the entry keeps for every attempt (records.Dest.Clock): the Status chat's
	// Lamport clocks; 0 for a connector.
	reserve(ev *bridges.Event) uint64
	// ready waits until an attempt can be made (a connector: its session connected)
	// and returns false when ctx ended first.
	ready(ctx context.Context) bool
	// deliver makes one attempt at entry e (event ev) and returns the destination-side
	// IDs of what was posted.
	deliver(ctx context.Context, o *outbox, e records.OutboxEntry, ev *bridges.Event) ([]string, error)
	// parallel is how many first attempts may run at once; 1 keeps the order.
	parallel() int
	// settle is how long a delivery stays unmarked (a crash meanwhile sends it again).
	settle() time.Duration
}

// connDest delivers to a channel of a connector.
type connDest struct {
	g   *Gateway
	rt  *route
	c   bridges.Connector
	net string
}

func (d *connDest) reserve(*bridges.Event) uint64 { return 0 }
func (d *connDest) parallel() int                 { return 1 }
func (d *connDest) settle() time.Duration         { return 0 }

// ready waits for the connector's state to be StateConnected, woken by its reports:
// attempts are not spent on a network that is down.
func (d *connDest) ready(ctx context.Context) bool {
	for {
		st, changed := d.g.connState(d.net)
		if st == bridges.StateConnected {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-changed:
		}
	}
}

// deliver makes one attempt, shaped by the connector's Capabilities: a text longer
// than MaxTextLen split (or cut) by the route's LongText; a reply shown as a quote when
// the network has no replies; an edit older than EditWindow, or for a network without
// edits, posted as a new message; a delete or a reaction the network cannot show
// recorded and not posted.
func (d *connDest) deliver(ctx context.Context, o *outbox, e records.OutboxEntry, ev *bridges.Event) ([]string, error) {
	c := d.c
	caps, err := guarded(o.log, "capabilities", func() (bridges.Capabilities, error) { return c.Capabilities(), nil })
	if err != nil {
		return nil, err
	}
	out := bridges.Outbound{Event: *ev, Channel: o.dest, Key: e.Key}
	if ev.ReplyTo != "" {
		if caps.Replies {
			if out.ReplyTo, err = o.mapped(ctx, ev, ev.ReplyTo); err != nil {
				return nil, err
			}
		} else if out.Event.Text, err = d.quote(ctx, ev); err != nil {
			return nil, err
		}
	}
	if ev.Target != "" {
		if out.Target, err = o.mapped(ctx, ev, ev.Target); err != nil {
			return nil, err
		}
	}
	lim := textLimit{max: caps.MaxTextLen}
	var r bridges.Receipt
	switch ev.Kind {
	case bridges.KindMessage, bridges.KindAction, bridges.KindNotice:
		return o.sendParts(ctx, c, e, out, splitText(out.Event.Text, lim, 0, d.rt.LongText, d.g.cfg.MaxParts))
	case bridges.KindEdit:
		// An edit replaces one message: a long one is cut, never split.
		out.Event.Text = splitText(ev.Text, lim, 0, LongTruncate, 1)[0]
		late, err := d.late(ctx, ev, caps.EditWindow)
		if err != nil {
			return nil, err
		}
		if ed, ok := c.(bridges.Editor); ok && out.Target != "" && !late {
			r, err = guarded(o.log, "edit", func() (bridges.Receipt, error) { return ed.Edit(ctx, out) })
			if !errors.Is(err, bridges.ErrUnsupported) {
				break
			}
		}
		out.Target = ""
		out.Event.Kind, out.Event.Target = bridges.KindMessage, ""
		r, err = guarded(o.log, "send", func() (bridges.Receipt, error) { return c.Send(ctx, out) })
	case bridges.KindDelete:
		if rd, ok := c.(bridges.Redactor); ok && out.Target != "" {
			_, err = guarded(o.log, "redact", func() (struct{}, error) { return struct{}{}, rd.Redact(ctx, out) })
		} else {
			d.g.m.dropped.WithLabelValues(dropKind).Inc()
		}
	case bridges.KindReaction:
		if re, ok := c.(bridges.Reactor); ok && out.Target != "" {
			r, err = guarded(o.log, "react", func() (bridges.Receipt, error) { return re.React(ctx, out) })
		} else {
			d.g.m.dropped.WithLabelValues(dropKind).Inc()
		}
	}
	if errors.Is(err, bridges.ErrUnsupported) {
		d.g.m.dropped.WithLabelValues(dropKind).Inc()
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

// quoteLen is how much of an answered message a quote shows, in characters.
const quoteLen = 80

// quote renders ev's reply as text for a network without replies: the answered
// message's author and first line as a block quote, then ev's text. When the ledger
// does not know the answered message, the text goes as it is.
func (d *connDest) quote(ctx context.Context, ev *bridges.Event) (string, error) {
	rec, found, err := d.g.ledger.EventOf(ctx, string(ev.Origin.Channel), string(ev.ReplyTo))
	if err != nil {
		return "", fmt.Errorf("read the answered message %s: %w", ev.ReplyTo, err)
	}
	if !found {
		return ev.Text, nil
	}
	answered, err := decodeBody(rec.Body)
	if err != nil {
		return ev.Text, nil
	}
	line, _, cut := strings.Cut(answered.Text, "\n")
	if len([]rune(line)) > quoteLen {
		line, cut = string([]rune(line)[:quoteLen]), true
	}
	if cut {
		line += "…"
	}
	who := answered.Sender.Name
	if who == "" {
		who = answered.Sender.ID.Local()
	}
	q := "> " + bridges.Escape(who) + ": " + line + "\n\n" + ev.Text
	return bridges.Truncate(q, bridges.MaxTextLen), nil
}

// late reports whether the message an edit changes is older than window (0: no limit),
// by the time of its event in the ledger; an unknown target is not late.
func (d *connDest) late(ctx context.Context, ev *bridges.Event, window time.Duration) (bool, error) {
	if window <= 0 || ev.Target == "" {
		return false, nil
	}
	rec, found, err := d.g.ledger.EventOf(ctx, string(ev.Origin.Channel), string(ev.Target))
	if err != nil {
		return false, fmt.Errorf("read the edited message %s: %w", ev.Target, err)
	}
	if !found {
		return false, nil
	}
	at := rec.Received
	if target, err := decodeBody(rec.Body); err == nil && !target.Time.IsZero() {
		at = target.Time
	}
	return d.g.clock.Now().Sub(at) > window, nil
}

// sendParts posts the parts of a message (one, unless split) through c.Send, each with
// its own idempotency key (the first: the entry's), the reply on the first only. Parts
// posted by an earlier attempt of this process are not posted again; after a restart
// they are, with the same keys (networks with transaction IDs post them once).
func (o *outbox) sendParts(ctx context.Context, c bridges.Connector, e records.OutboxEntry, out bridges.Outbound, parts []string) ([]string, error) {
	done := o.parts[e.ID]
	ids := slices.Clone(done)
	for i := len(done); i < len(parts); i++ {
		p := out
		p.Event.Text, p.Key = parts[i], partKey(e.Key, i)
		if i > 0 {
			p.ReplyTo, p.Event.ReplyTo = "", ""
		}
		r, err := guarded(o.log, "send", func() (bridges.Receipt, error) { return c.Send(ctx, p) })
		if err != nil {
			if i > 0 {
				o.parts[e.ID] = ids
			}
			return nil, err
		}
		ids = append(ids, string(r.ID))
	}
	return slices.DeleteFunc(ids, func(id string) bool { return id == "" }), nil
}
