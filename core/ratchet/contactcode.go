package ratchet

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/statusgate/statusgate/core/ratchet/protobuf"
	"github.com/statusgate/statusgate/core/whisper"
)

// ContactCode builds our contact-code advertisement (PROTOCOL.md §3.6): a ProtocolMessage
// with our installation id and bundle on our contact-code topic, symmetric key
// PBKDF2(topic name). payload, if not nil, rides as public_message (status-go v0.70.1
// puts a ContactCodeAdvertisement there; late-2019 clients sent none).
func (r *Ratchet) ContactCode(ctx context.Context, payload []byte) (*Outgoing, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, err := r.bundle(ctx)
	if err != nil {
		return nil, err
	}
	name := ContactCodeTopicName(&r.identity.PublicKey)
	if r.contactCode == nil {
		if r.contactCode, err = whisper.SymKeyFromPassword(name); err != nil {
			return nil, fmt.Errorf("contact code key: %w", err)
		}
	}
	pm := &protobuf.ProtocolMessage{InstallationId: r.cfg.InstallationID, Bundles: []*protobuf.Bundle{b}, PublicMessage: payload}
	enc, err := proto.Marshal(pm)
	if err != nil {
		return nil, fmt.Errorf("encode contact code: %w", err)
	}
	return &Outgoing{
		Recipient: &r.identity.PublicKey, Message: pm, Payload: enc,
		Envelope: Envelope{TopicName: name, Topic: whisper.TopicFromName(name), SymKey: r.contactCode},
	}, nil
}

// ContactCodeDue reports whether ContactCodeInterval has passed since our contact code
// was last published (always true the first time).
func (r *Ratchet) ContactCodeDue(ctx context.Context) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	last, err := r.cfg.Store.ContactCodePublished(ctx, r.owner)
	if err != nil {
		return false, storeErr("read contact code time", err)
	}
	return last.IsZero() || r.cfg.Clock().Sub(last) >= r.cfg.ContactCodeInterval, nil
}

// ContactCodePublished records that our contact code went out at at.
func (r *Ratchet) ContactCodePublished(ctx context.Context, at time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.cfg.Store.SetContactCodePublished(ctx, r.owner, at); err != nil {
		return storeErr("record contact code time", err)
	}
	return nil
}

// RunContactCode advertises our bundle every ContactCodeInterval until ctx ends: at
// start and at each tick (status-go checks every 120 s) it publishes the contact code if
// it is due, through publish (which sends the Outgoing over Whisper). A failed publish is
// logged and retried at the next tick; only ctx ends the loop. The caller owns the
// ticker, so tests drive it without waiting.
func (r *Ratchet) RunContactCode(ctx context.Context, tick <-chan time.Time, payload []byte, publish func(context.Context, *Outgoing) error) error {
	for {
		if err := r.advertise(ctx, payload, publish); err != nil && ctx.Err() == nil {
			r.log.Warn("ratchet contact code not published", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick:
		}
	}
}

func (r *Ratchet) advertise(ctx context.Context, payload []byte, publish func(context.Context, *Outgoing) error) error {
	due, err := r.ContactCodeDue(ctx)
	if err != nil || !due {
		return err
	}
	out, err := r.ContactCode(ctx, payload)
	if err != nil {
		return err
	}
	if err := publish(ctx, out); err != nil {
		return fmt.Errorf("publish contact code: %w", err)
	}
	return r.ContactCodePublished(ctx, r.cfg.Clock())
}
