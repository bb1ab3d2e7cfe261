package api

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/statusgate/statusgate/bridges"
)

// wireEvent is the JSON of one SSE event (the data line).
type wireEvent struct {
	ID       bridges.RemoteMsgID `json:"id"` // the Receipt ID: the message's ID on this network
	Kind     string              `json:"kind"`
	Channel  string              `json:"channel"` // local channel name
	Origin   wireOrigin          `json:"origin"`
	Sender   wireSender          `json:"sender"`
	Text     string              `json:"text"`
	ReplyTo  bridges.RemoteMsgID `json:"reply_to"` // destination-side (an api ID), or ""
	Target   bridges.RemoteMsgID `json:"target"`   // destination-side, for edit, delete, reaction
	Reaction string              `json:"reaction"`
	Time     string              `json:"time"` // RFC 3339 with nanoseconds
}

type wireOrigin struct {
	Network string              `json:"network"`
	Channel bridges.ChannelID   `json:"channel"`
	ID      bridges.RemoteMsgID `json:"id"`
}

type wireSender struct {
	ID   bridges.RemoteUserID `json:"id"`
	Name string               `json:"name"`
}

// Send publishes out as an SSE event of kind message, action or notice to the
// subscribers of out.Channel and to its replay ring. It never blocks on subscribers
// (a slow one is disconnected, see subscriber) and works whether or not anyone is
// listening: late clients read the ring with Last-Event-ID.
//
// The Receipt ID is NewRemoteMsgID(name, channel+"/"+out.Key), the same for every
// retry; if a record with out.Key is still in the ring, Send publishes nothing and
// returns that Receipt again. An unknown channel or kind is a permanent error.
func (c *Connector) Send(ctx context.Context, out bridges.Outbound) (bridges.Receipt, error) {
	switch out.Event.Kind {
	case bridges.KindMessage, bridges.KindAction, bridges.KindNotice:
	default:
		return bridges.Receipt{}, bridges.Permanent(fmt.Errorf("send to %s: %w: kind %s", out.Channel, bridges.ErrInvalidEvent, out.Event.Kind))
	}
	return c.publish(ctx, out.Event.Kind, out)
}

// Edit publishes an SSE event of kind edit: out.Target gets out.Event.Text. The
// Receipt ID is the edit's own ID, built from out.Key as in Send.
func (c *Connector) Edit(ctx context.Context, out bridges.Outbound) (bridges.Receipt, error) {
	if out.Target == "" {
		return bridges.Receipt{}, bridges.Permanent(fmt.Errorf("edit in %s: %w: no target", out.Channel, bridges.ErrInvalidEvent))
	}
	return c.publish(ctx, bridges.KindEdit, out)
}

// Redact publishes an SSE event of kind delete for out.Target.
func (c *Connector) Redact(ctx context.Context, out bridges.Outbound) error {
	if out.Target == "" {
		return bridges.Permanent(fmt.Errorf("delete in %s: %w: no target", out.Channel, bridges.ErrInvalidEvent))
	}
	_, err := c.publish(ctx, bridges.KindDelete, out)
	return err
}

// React publishes an SSE event of kind reaction: out.Event.Reaction on out.Target.
// The Receipt ID is the reaction's own ID, so a later delete can name it.
func (c *Connector) React(ctx context.Context, out bridges.Outbound) (bridges.Receipt, error) {
	if out.Target == "" || out.Event.Reaction == "" {
		return bridges.Receipt{}, bridges.Permanent(fmt.Errorf("react in %s: %w: no target or reaction", out.Channel, bridges.ErrInvalidEvent))
	}
	return c.publish(ctx, bridges.KindReaction, out)
}

// publish is the one path from the gateway to the SSE streams.
func (c *Connector) publish(ctx context.Context, kind bridges.Kind, out bridges.Outbound) (bridges.Receipt, error) {
	if err := ctx.Err(); err != nil {
		return bridges.Receipt{}, err
	}
	ch := c.chans.Load().byID[out.Channel]
	if ch == nil {
		return bridges.Receipt{}, bridges.Permanent(fmt.Errorf("send %s to %s: %w", kind, out.Channel, ErrUnknownChannel))
	}
	key := out.Key
	if key == "" { // no idempotency possible; the message still gets a unique ID
		k, err := c.randomHex()
		if err != nil {
			return bridges.Receipt{}, fmt.Errorf("send to %s: %w: %w", out.Channel, bridges.ErrTransient, err)
		}
		key = k
	}
	id, err := msgID(c.cfg.Name, ch.name, key)
	if err != nil {
		return bridges.Receipt{}, bridges.Permanent(fmt.Errorf("send to %s: key: %w", out.Channel, err))
	}
	if c.addr.Load() == nil { // no session: no stream can read it; the gateway keeps it queued
		return bridges.Receipt{}, fmt.Errorf("send to %s: %w: %w", out.Channel, bridges.ErrTransient, ErrNotServing)
	}
	ev := out.Event
	data, err := json.Marshal(wireEvent{
		ID:       id,
		Kind:     kind.String(),
		Channel:  ch.name,
		Origin:   wireOrigin{Network: ev.Origin.Network, Channel: ev.Origin.Channel, ID: ev.Origin.ID},
		Sender:   wireSender{ID: ev.Sender.ID, Name: ev.Sender.Name},
		Text:     ev.Text,
		ReplyTo:  out.ReplyTo,
		Target:   out.Target,
		Reaction: ev.Reaction,
		Time:     ev.Time.Format(time.RFC3339Nano),
	})
	if err != nil { // cannot happen: strings only
		return bridges.Receipt{}, bridges.Permanent(fmt.Errorf("send to %s: encode: %w", out.Channel, err))
	}
	seq, dup := ch.publish(record{kind: kind.String(), key: out.Key, data: data})
	c.logger().Debug("published", "chat", ch.name, "kind", kind.String(), "msg_id", string(id), "seq", seq, "duplicate", dup)
	return bridges.Receipt{ID: id}, nil
}
