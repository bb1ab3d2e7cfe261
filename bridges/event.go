package bridges

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
)

// Kind says what an Event is. The zero Kind is invalid, so a forgotten field is caught
// by Validate.
type Kind uint8

// The event kinds. The fields each one uses are listed in Event.
const (
	KindMessage  Kind = iota + 1 // a message: Text
	KindAction                   // an emote, "/me waves": Text without the sender's name
	KindEdit                     // a new Text for the message Target
	KindDelete                   // the message Target was removed
	KindReaction                 // Reaction on the message Target
	KindNotice                   // an automated message (bot, server notice): Text
)

var kindNames = [...]string{
	KindMessage: "message", KindAction: "action", KindEdit: "edit", KindDelete: "delete",
	KindReaction: "reaction", KindNotice: "notice",
}

// String returns the lowercase name used in logs and metrics ("message"), or "Kind(n)".
func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Origin says where an event came from. (Network, Channel, ID) is the event's identity:
// the gateway deduplicates on it and derives idempotency keys from it, so a connector
// must give the same remote event the same Origin every time it sees it.
type Origin struct {
	// Network is the Name of the connector that received the event. Channel and ID
	// belong to it.
	Network string
	// Channel is where the event happened.
	Channel ChannelID
	// ID is the network's ID of the event itself. Connectors for networks that number
	// nothing (plain IRC) build one that is unique and stable for the event. Required.
	ID RemoteMsgID
}

// Sender says who caused an event.
type Sender struct {
	// ID is the account on Origin.Network. The puppet package derives the sender's
	// Status identity from it, so it must never change for the same remote account
	// (use the account ID, not a nickname, where the network has one).
	ID RemoteUserID
	// Name is the display name to show now (a nick, a display name); may be empty.
	Name string
	// IsBridge is true when the sender is this gateway itself: one of its ghosts,
	// puppets or bot accounts on the remote network. The gateway drops such events
	// (loop prevention by identity, ARCHITECTURE.md decision 5), so a connector must
	// set it whenever it can tell, even for messages it sent itself.
	IsBridge bool
	// Moderator is set by a connector on a KindDelete whose Sender did not write the
	// target but, by the network's own rules, may remove others' messages in
	// Origin.Channel (a Matrix user whose power level reaches the room's redact level).
	// The gateway relays only the author's own edits and deletes; with Moderator it
	// also relays the delete of another's message, and records who did it in its log.
	// Connectors never set it on other kinds: nobody edits another's message.
	Moderator bool
}

// Event is one thing that happened in a channel, in the network-neutral model that
// crosses the connector seam in both directions. Connectors build Events from remote
// traffic and hand them to Host.Deliver; the gateway builds Outbound values holding
// Events from other networks (Status included) and hands them to Connector.Send.
//
// Fields by Kind (others must be zero):
//
//	KindMessage, KindAction, KindNotice   Text, optional ReplyTo
//	KindEdit                              Target, Text (the whole new text)
//	KindDelete                            Target
//	KindReaction                          Target, Reaction
//
// Origin.Channel and Sender.ID are required for every Kind (a server or bot that
// posts notices gets a user ID too). All IDs in an Event belong to Origin.Network. Events are values: pass and copy them
// freely; nothing in them is shared.
type Event struct {
	Kind   Kind
	Origin Origin
	Sender Sender
	// Text is canonical text (see text.go), never the network's own format.
	Text string
	// ReplyTo is the message this one answers, if any.
	ReplyTo RemoteMsgID
	// Target is the message an edit, delete or reaction applies to.
	Target RemoteMsgID
	// Reaction is the reaction key: a Unicode emoji sequence ("👍") or, for custom
	// emoji, the network's shortcode in colons (":partyparrot:").
	Reaction string
	// Time is when the network says the event happened (server time where the network
	// gives one, else the time it was received).
	Time time.Time
}

// Validate returns nil if e is well formed for its Kind (see Event), else an error
// wrapping ErrInvalidEvent that names the first problem. Host.Deliver calls it; a
// connector may call it in tests.
func (e *Event) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s %s: %s", ErrInvalidEvent, e.Kind, e.Origin.ID, fmt.Sprintf(format, args...))
	}
	if e.Kind == 0 || int(e.Kind) >= len(kindNames) {
		return bad("unknown kind")
	}
	if err := ValidNetwork(e.Origin.Network); err != nil {
		return bad("origin: %v", err)
	}
	ids := []struct {
		name     string
		id       string
		required bool
	}{
		{"origin channel", string(e.Origin.Channel), true},
		{"origin ID", string(e.Origin.ID), true},
		{"sender", string(e.Sender.ID), true},
		{"reply-to", string(e.ReplyTo), false},
		{"target", string(e.Target), e.Kind == KindEdit || e.Kind == KindDelete || e.Kind == KindReaction},
	}
	for _, f := range ids {
		if f.id == "" {
			if f.required {
				return bad("%s missing", f.name)
			}
			continue
		}
		if err := validateID(f.name, f.id); err != nil {
			return bad("%v", err)
		}
		if n := RemoteMsgID(f.id).Network(); n != e.Origin.Network {
			return bad("%s %q is not in network %s", f.name, f.id, e.Origin.Network)
		}
	}
	if err := ValidText(e.Text); err != nil {
		return bad("%v", err)
	}
	switch e.Kind {
	case KindMessage, KindAction, KindNotice, KindEdit:
		if e.Text == "" {
			return bad("empty text")
		}
	case KindDelete:
		if e.Text != "" {
			return bad("text not allowed")
		}
	}
	if (e.Kind == KindReaction) != (e.Reaction != "") {
		return bad("reaction %q with this kind", e.Reaction)
	}
	if e.ReplyTo != "" && e.Kind != KindMessage && e.Kind != KindAction && e.Kind != KindNotice {
		return bad("reply-to not allowed")
	}
	if e.Target != "" && e.Kind != KindEdit && e.Kind != KindDelete && e.Kind != KindReaction {
		return bad("target not allowed")
	}
	if e.Sender.Moderator && e.Kind != KindDelete {
		return bad("moderator flag on a %s", e.Kind)
	}
	return nil
}

// Outbound is what the gateway asks a connector to post: an Event from another network,
// the destination on the connector's network, and the destination-side IDs the gateway
// has already mapped.
//
// Event is unchanged from its origin, so all its IDs belong to Event.Origin.Network; a
// connector reads them only to log. It uses Channel, ReplyTo and Target instead, which
// belong to the connector's own network.
type Outbound struct {
	Event Event
	// Channel is where to post; it belongs to the receiving connector.
	Channel ChannelID
	// ReplyTo is the destination-side ID of the message Event.ReplyTo answers, or ""
	// when the gateway knows none (the connector then posts without a reply).
	ReplyTo RemoteMsgID
	// Target is the destination-side ID of the message Event.Target (for KindEdit,
	// KindDelete, KindReaction). The gateway only sends such events when it knows it.
	Target RemoteMsgID
	// Key is the idempotency key (IdempotencyKey): identical for every retry of this
	// Outbound, different for any other. Connectors whose network accepts a client
	// transaction ID (Matrix txnId, Slack client_msg_id) pass it on, so that a retry
	// after a lost reply does not post twice; others may ignore it.
	Key string
}

// Receipt is what a connector reports after posting an Outbound.
type Receipt struct {
	// ID is the ID the destination network gave the posted event, in the connector's
	// namespace. The gateway stores it against the origin event, to map later replies,
	// edits, deletes and reactions. Empty when the network assigns none; such messages
	// cannot be edited, deleted or reacted to later.
	ID RemoteMsgID
}

// IdempotencyKey returns the key the gateway puts in Outbound.Key for the event o
// posted to destination dest: 32 lowercase hex characters (128 bits of SHA-256 over a
// length-prefixed encoding of o and dest), a valid Matrix transaction ID and, with
// dashes inserted, a UUID-shaped string. It is a pure function, so retries across
// restarts get the same key.
func IdempotencyKey(o Origin, dest ChannelID) string {
	h := sha256.New()
	for _, s := range []string{"statusgate-idem-v1", o.Network, string(o.Channel), string(o.ID), string(dest)} {
		h.Write(strconv.AppendInt(nil, int64(len(s)), 10))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
