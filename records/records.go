// Package records holds the record types that more than one layer handles: the gateway's
// ledger rows (accepted events, outbox entries, message-map aliases) and the puppet
// registry's rows, with their sentinel errors. core/gateway and puppet define the
// interfaces they persist through in terms of these types, and store implements those
// interfaces with them, so that no package mirrors another's structs and the router
// links no database driver.
//
// It is a leaf: standard library only (test/archtest checks), no behaviour beyond
// plain data, no state. The types say nothing of how a row is encoded in a database
// (store decides) or what an event body holds (the gateway encodes it).
package records

import (
	"errors"
	"time"
)

// ErrUnknownEntry: a ledger Mark… call names an outbox entry ID the ledger does not
// hold.
var ErrUnknownEntry = errors.New("unknown outbox entry")

// Event is one accepted event as the ledger keeps it.
type Event struct {
	// Network, Channel and MsgID are the event's origin (bridges.Origin as strings).
	// MsgID is empty for events the network numbers not (joins, parts): those are
	// never deduplicated.
	Network string
	Channel string
	MsgID   string
	// Kind is the bridges.Kind name ("message"), for operators reading the table.
	Kind string
	// Body is the event, encoded by the gateway; the ledger does not read it.
	Body []byte
	// Received is when the gateway accepted the event.
	Received time.Time
}

// Dest is one outbox entry to create with an event.
type Dest struct {
	// Dest is the destination channel ID.
	Dest string
	// Key is the idempotency key (bridges.IdempotencyKey).
	Key string
	// Clock is fixed at ingest for Status destinations (the Lamport clock the message
	// is sent with, so that every retry sends the same message ID); 0 otherwise.
	Clock uint64
}

// Ingest is one event to record with its outbox entries (a batch element).
type Ingest struct {
	Event Event
	Dests []Dest
}

// Ingested is the outcome of one Ingest: the event's ID, and whether it is new (a
// re-delivered origin is not: ID 0, nothing written).
type Ingested struct {
	EventID  int64
	Inserted bool
}

// Alias maps another ID, Alias, to the message known in Channel as MsgID.
type Alias struct {
	Channel string
	MsgID   string
	Alias   string
}

// Delivery marks one outbox entry delivered at At, with the destination's IDs of the
// posted message (possibly none).
type Delivery struct {
	EntryID int64
	IDs     []string
	At      time.Time
}

// OutboxEntry is one pending delivery with its event's body.
type OutboxEntry struct {
	ID       int64
	EventID  int64
	Dest     string
	Key      string
	Clock    uint64
	Attempts int
	// NextAttempt is when the entry may be tried again (zero: now).
	NextAttempt time.Time
	// Body and Received are the event's (Event).
	Body     []byte
	Received time.Time
}

// Puppet is what the puppet registry persists about one puppet. No private key is ever
// part of it: keys are re-derived from the gateway secret.
type Puppet struct {
	// Network, Account and User are the identity.PuppetID fields the puppet stands for.
	Network string
	Account string
	User    string
	// ChatKey is the puppet's public key as identity.ChatKey formats it ("0x04…").
	ChatKey string
	// DisplayName is the remote user's last known display name ("" if never known).
	DisplayName string
	// FirstSeen and LastSeen bound the puppet's sightings (Registry.Key calls).
	FirstSeen time.Time
	LastSeen  time.Time
}

// Sentinel errors of the route table.
var (
	// ErrRouteExists: a route for that conversation is in the table already.
	ErrRouteExists = errors.New("route exists")
	// ErrChannelTaken: a channel of the route belongs to another route.
	ErrChannelTaken = errors.New("channel in another route")
	// ErrNoRoute: no route for that conversation.
	ErrNoRoute = errors.New("no such route")
)

// Route is one row of the route table: a Status conversation and the remote channels
// bridged to it.
type Route struct {
	// Chat names the Status conversation: for Kind "public", the public chat's name.
	Chat string
	// Kind is the kind of conversation: "public" (a public chat). 1:1 and group
	// conversations will be kinds of their own, named by a key or a group ID in Chat.
	Kind string
	// LongText is the route's long-text policy ("split" or "truncate"; "" is split).
	LongText string
	// Channels are the remote channels, in the order they were given.
	Channels []RouteChannel
	// Source says where the route came from: "config" (the configuration file, loaded
	// at every start) or "api" (added at run time).
	Source string
}

// RouteChannel is one channel of a route.
type RouteChannel struct {
	Channel   string // bridges.ChannelID
	Direction string // "both", "in" or "out"
}
