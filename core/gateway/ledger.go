package gateway

import (
	"context"
	"time"

	"github.com/statusgate/statusgate/records"
)

// Ledger is the gateway's persistent state: every accepted event, each destination's
// ordered outbox, and the cross-network message map. store.Store implements it on
// SQLite and PostgreSQL. Its record types are package records', which store uses too
// (store may not import this package, ARCHITECTURE.md).
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
	IngestEvent(ctx context.Context, ev records.Event, dests []records.Dest) (eventID int64, inserted bool, err error)
	// IngestEvents is IngestEvent for several events in one transaction (group commit:
	// one disk sync for all), in order: results[i] is batch[i]'s outcome, and an event
	// that repeats the origin of an earlier one in the batch is a duplicate. On error
	// nothing is written.
	IngestEvents(ctx context.Context, batch []records.Ingest) (results []records.Ingested, err error)
	// PendingEntries returns up to limit entries of dest that are neither delivered
	// nor failed and whose ID is greater than after, in ID order, each with its
	// event's Body.
	PendingEntries(ctx context.Context, dest string, after int64, limit int) ([]records.OutboxEntry, error)
	// CountPending returns how many entries of dest are neither delivered nor failed.
	CountPending(ctx context.Context, dest string) (int64, error)
	// MaxClock returns the largest Clock of any entry of dest, 0 if none.
	MaxClock(ctx context.Context, dest string) (uint64, error)
	// MarkDelivered marks the entry delivered at at and maps each of ids (the
	// destination's IDs of the posted message, possibly none) in the entry's Dest
	// channel to the entry's event. Marking an entry twice is harmless.
	MarkDelivered(ctx context.Context, entryID int64, ids []string, at time.Time) error
	// MarkDeliveredBatch is MarkDelivered for several entries in one transaction.
	MarkDeliveredBatch(ctx context.Context, batch []records.Delivery) error
	// MarkRetry records a failed attempt: the attempt count, when to try next and the
	// error text.
	MarkRetry(ctx context.Context, entryID int64, attempts int, next time.Time, lastErr string) error
	// MarkFailed ends the entry as failed (it is never tried again) at at.
	MarkFailed(ctx context.Context, entryID int64, attempts int, lastErr string, at time.Time) error
	// AddAliases maps each alias's Alias in its Channel to the event known there as
	// MsgID (origin or copy), in one transaction; an alias of an unknown message, or one
	// already mapped, is skipped. An alias is mapped like an origin: it answers
	// MappedIDs, and a later event with it as origin is a duplicate.
	AddAliases(ctx context.Context, aliases []records.Alias) error
	// MappedIDs returns the IDs in channel dest of the message known in channel src as
	// msgID (origin or delivered copy), oldest first; none when there is no such
	// message or it never reached dest.
	MappedIDs(ctx context.Context, src, msgID, dest string) ([]string, error)
	// EventOf returns the event of the message known in channel as msgID (origin or
	// delivered copy); found is false when there is none. The gateway reads the target's
	// author from its Body before it relays an edit or a delete.
	EventOf(ctx context.Context, channel, msgID string) (ev records.Event, found bool, err error)
}
