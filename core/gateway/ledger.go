package gateway

import (
	"context"
	"time"
)

// Ledger is the gateway's persistent state: every accepted event, each destination's
// ordered outbox, and the cross-network message map. store.Store implements it on
// SQLite and PostgreSQL. The record types are aliases of unnamed struct types, as
// puppet.Record is, because store may not import this package (ARCHITECTURE.md): store
// declares identical struct types and its methods satisfy Ledger structurally.
//
// All methods are safe for concurrent use. Times are stored with nanosecond precision.
type Ledger interface {
	// IngestEvent records ev and one outbox entry per element of dests, and maps
	// (ev.Channel, ev.MsgID) to the new event, in one transaction. When ev.MsgID is
	// not empty and (ev.Channel, ev.MsgID) is already in the message map (as an
	// origin or as a delivered copy), it writes nothing and returns inserted false:
	// that is how a re-delivered event becomes a no-op (event ID 0). Entries get
	// increasing IDs in the order of dests, greater than every entry already committed,
	// so a reader paging by ID never skips one.
	IngestEvent(ctx context.Context, ev LedgerEvent, dests []LedgerDest) (eventID int64, inserted bool, err error)
	// IngestEvents is IngestEvent for several events in one transaction (group commit:
	// one disk sync for all), in order: results[i] is batch[i]'s outcome, and an event
	// that repeats the origin of an earlier one in the batch is a duplicate. On error
	// nothing is written.
	IngestEvents(ctx context.Context, batch []LedgerIngest) (results []LedgerIngested, err error)
	// PendingEntries returns up to limit entries of dest that are neither delivered
	// nor failed and whose ID is greater than after, in ID order, each with its
	// event's Body.
	PendingEntries(ctx context.Context, dest string, after int64, limit int) ([]OutboxEntry, error)
	// CountPending returns how many entries of dest are neither delivered nor failed.
	CountPending(ctx context.Context, dest string) (int64, error)
	// MaxClock returns the largest Clock of any entry of dest, 0 if none.
	MaxClock(ctx context.Context, dest string) (uint64, error)
	// MarkDelivered marks the entry delivered at at and maps each of ids (the
	// destination's IDs of the posted message, possibly none) in the entry's Dest
	// channel to the entry's event. Marking an entry twice is harmless.
	MarkDelivered(ctx context.Context, entryID int64, ids []string, at time.Time) error
	// MarkDeliveredBatch is MarkDelivered for several entries in one transaction.
	MarkDeliveredBatch(ctx context.Context, batch []LedgerDelivery) error
	// MarkRetry records a failed attempt: the attempt count, when to try next and the
	// error text.
	MarkRetry(ctx context.Context, entryID int64, attempts int, next time.Time, lastErr string) error
	// MarkFailed ends the entry as failed (it is never tried again) at at.
	MarkFailed(ctx context.Context, entryID int64, attempts int, lastErr string, at time.Time) error
	// AddAliases maps each alias's Alias in its Channel to the event known there as
	// MsgID (origin or copy), in one transaction; an alias of an unknown message, or one
	// already mapped, is skipped. An alias is mapped like an origin: it answers
	// MappedIDs, and a later event with it as origin is a duplicate.
	AddAliases(ctx context.Context, aliases []LedgerAlias) error
	// MappedIDs returns the IDs in channel dest of the message known in channel src as
	// msgID (origin or delivered copy), oldest first; none when there is no such
	// message or it never reached dest.
	MappedIDs(ctx context.Context, src, msgID, dest string) ([]string, error)
}

// LedgerEvent is one accepted event as the ledger keeps it.
type LedgerEvent = struct {
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

// LedgerIngest is one element of IngestEvents.
type LedgerIngest = struct {
	Event LedgerEvent
	Dests []LedgerDest
}

// LedgerIngested is the outcome of one LedgerIngest (see IngestEvent).
type LedgerIngested = struct {
	EventID  int64
	Inserted bool
}

// LedgerAlias is one element of AddAliases.
type LedgerAlias = struct {
	Channel string
	MsgID   string
	Alias   string
}

// LedgerDelivery is one element of MarkDeliveredBatch.
type LedgerDelivery = struct {
	EntryID int64
	IDs     []string
	At      time.Time
}

// LedgerDest is one outbox entry to create with an event.
type LedgerDest = struct {
	// Dest is the destination channel ID.
	Dest string
	// Key is the idempotency key (bridges.IdempotencyKey).
	Key string
	// Clock is fixed at ingest for Status destinations (the Lamport clock the message
	// is sent with, so that every retry sends the same message ID); 0 otherwise.
	Clock uint64
}

// OutboxEntry is one pending delivery as PendingEntries returns it.
type OutboxEntry = struct {
	ID       int64
	EventID  int64
	Dest     string
	Key      string
	Clock    uint64
	Attempts int
	// NextAttempt is when the entry may be tried again (zero: now).
	NextAttempt time.Time
	// Body and Received are the event's (LedgerEvent).
	Body     []byte
	Received time.Time
}
