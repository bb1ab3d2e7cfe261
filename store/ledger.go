package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// The gateway ledger (gateway.Ledger): every accepted event (gateway_events), one
// ordered outbox per destination (gateway_outbox) and the cross-network message map
// (gateway_msgmap), in migrations 0004_gateway.sql. store may not import core/gateway
// (ARCHITECTURE.md), so, as for PuppetRecord, the record types below are the same
// unnamed struct types as gateway.LedgerEvent, gateway.LedgerDest and
// gateway.OutboxEntry, and *Store implements gateway.Ledger structurally;
// ledger_test.go checks that at compile time. Keep the fields and their order identical
// to core/gateway/ledger.go.

// LedgerEvent is one accepted event (gateway.LedgerEvent).
type LedgerEvent = struct {
	Network  string
	Channel  string
	MsgID    string
	Kind     string
	Body     []byte
	Received time.Time
}

// LedgerDest is one outbox entry to create with an event (gateway.LedgerDest).
type LedgerDest = struct {
	Dest  string
	Key   string
	Clock uint64
}

// OutboxEntry is one pending delivery with its event's body (gateway.OutboxEntry).
type OutboxEntry = struct {
	ID          int64
	EventID     int64
	Dest        string
	Key         string
	Clock       uint64
	Attempts    int
	NextAttempt time.Time
	Body        []byte
	Received    time.Time
}

// ErrUnknownEntry: a Mark… call names an outbox entry ID the ledger does not hold.
var ErrUnknownEntry = errors.New("unknown outbox entry")

// outboxChunk is how many entries one multi-row outbox INSERT carries (4 parameters
// each); an event has one entry per route destination, so one INSERT in practice.
const outboxChunk = 16

// ledgerSQL holds the ledger's statements, rebound for one dialect. They are built once
// per dialect at package initialization (pure string work, no I/O); the drivers cache
// the prepared forms per connection (pgx's statement cache; SQLite prepares in µs, far
// below the commit's fsync).
type ledgerSQL struct {
	// ingestPG is IngestEvent on PostgreSQL in one statement (empty on SQLite): lock,
	// event row, origin mapping, and the outbox rows if the origin was new.
	ingestPG     string
	insertEvent  string                  // SQLite
	insertMap    string                  // (event_id, channel, msg_id); a mapped (channel, msg_id) is left as it is
	insertOutbox [outboxChunk + 1]string // [n]: n rows
	pending      string
	countPending string
	delivered    string
	retry        string
	failed       string
	mapped       string
}

var ledgerQueries = map[string]*ledgerSQL{
	DriverSQLite:   newLedgerSQL(dialects[DriverSQLite]),
	DriverPostgres: newLedgerSQL(dialects[DriverPostgres]),
}

func newLedgerSQL(d dialect) *ledgerSQL {
	q := &ledgerSQL{
		insertEvent: d.rebind(`INSERT INTO gateway_events (network, channel, msg_id, kind, body, received)
VALUES (?, ?, ?, ?, ?, ?)`),
		insertMap: d.rebind(`INSERT INTO gateway_msgmap (event_id, channel, msg_id) VALUES (?, ?, ?)
ON CONFLICT (channel, msg_id) DO NOTHING`),
		// state = 'pending' is a literal, not a parameter, so that both planners use the
		// partial index gateway_outbox_pending.
		pending: d.rebind(`SELECT o.id, o.event_id, o.idem_key, o.clock, o.attempts, o.next_attempt, e.body, e.received
FROM gateway_outbox o JOIN gateway_events e ON e.id = o.event_id
WHERE o.dest = ? AND o.state = 'pending' AND o.id > ?
ORDER BY o.id LIMIT ?`),
		countPending: d.rebind(`SELECT COUNT(*) FROM gateway_outbox WHERE dest = ? AND state = 'pending'`),
		// A second MarkDelivered keeps the first done_at; delivered is final.
		delivered: d.rebind(`UPDATE gateway_outbox SET
	done_at = CASE WHEN state = 'delivered' THEN done_at ELSE ? END,
	state = 'delivered'
WHERE id = ? RETURNING event_id, dest`),
		retry: d.rebind(`UPDATE gateway_outbox SET attempts = ?, next_attempt = ?, last_error = ? WHERE id = ?`),
		// A delivered entry stays delivered (a late failure report changes nothing).
		failed: d.rebind(`UPDATE gateway_outbox SET
	attempts = CASE WHEN state = 'delivered' THEN attempts ELSE ? END,
	last_error = CASE WHEN state = 'delivered' THEN last_error ELSE ? END,
	done_at = CASE WHEN state = 'delivered' THEN done_at ELSE ? END,
	state = CASE WHEN state = 'delivered' THEN state ELSE 'failed' END
WHERE id = ?`),
		mapped: d.rebind(`SELECT m2.msg_id FROM gateway_msgmap m1
JOIN gateway_msgmap m2 ON m2.event_id = m1.event_id
WHERE m1.channel = ? AND m1.msg_id = ? AND m2.channel = ?
ORDER BY m2.id`),
	}
	if d.name == DriverPostgres {
		q.ingestPG = ingestPGSQL
	}
	for n := 1; n <= outboxChunk; n++ {
		var b strings.Builder
		b.WriteString("INSERT INTO gateway_outbox (event_id, dest, idem_key, clock) VALUES ")
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?,?,?,?)")
		}
		q.insertOutbox[n] = d.rebind(b.String())
	}
	return q
}

// ingestPGSQL is IngestEvent on PostgreSQL: one round trip inside the transaction
// instead of four. The advisory lock (held to the commit) serializes ingests: an
// identity column hands out IDs in call order, not commit order, and a dispatcher
// paging PendingEntries by "ID > after" would skip an entry that commits after a higher
// one; under the lock IDs follow commit order, as gateway.Ledger promises (SQLite's
// BEGIN IMMEDIATE does the same). The MATERIALIZED CTE takes the lock before any row
// gets an ID. The outbox rows are inserted only when the origin was mapped (or MsgID is
// empty); otherwise the caller rolls back the event row. Parameters: $1…$6 the event,
// $7…$9 the destinations, keys and clocks as arrays in dests order; the result is the
// event ID and whether the origin was new.
const ingestPGSQL = `WITH l AS MATERIALIZED (SELECT pg_advisory_xact_lock(7355608002)),
e AS (INSERT INTO gateway_events (network, channel, msg_id, kind, body, received)
	SELECT $1, $2, $3, $4, $5, $6 FROM l RETURNING id),
m AS (INSERT INTO gateway_msgmap (event_id, channel, msg_id)
	SELECT id, $2, $3 FROM e WHERE $3 <> '' ON CONFLICT (channel, msg_id) DO NOTHING RETURNING event_id),
ok AS (SELECT $3 = '' OR EXISTS (SELECT 1 FROM m) AS new),
o AS (INSERT INTO gateway_outbox (event_id, dest, idem_key, clock)
	SELECT e.id, d.dest, d.key, d.clock
	FROM e, ok, unnest($7::text[], $8::text[], $9::bigint[]) WITH ORDINALITY AS d(dest, key, clock, n)
	WHERE ok.new ORDER BY d.n)
SELECT e.id, ok.new FROM e, ok`

func (s *Store) ledger() *ledgerSQL { return ledgerQueries[s.d.name] }

// IngestEvent records ev, maps (ev.Channel, ev.MsgID) to it when MsgID is not empty,
// and creates one pending outbox entry per element of dests, in that order, all in one
// transaction (gateway.Ledger). When (ev.Channel, ev.MsgID) is already mapped, as an
// origin or as a delivered copy, it writes nothing and returns 0, false. A Clock above
// math.MaxInt64 is an error (the column is a signed 64-bit integer). Called by the
// gateway for each accepted event; it blocks on the database, for the commit's sync
// on SQLite and, on PostgreSQL, for concurrent IngestEvent calls (which it serializes
// so that entry IDs follow commit order).
func (s *Store) IngestEvent(ctx context.Context, ev LedgerEvent, dests []LedgerDest) (eventID int64, inserted bool, err error) {
	for _, d := range dests {
		if d.Clock > math.MaxInt64 {
			return 0, false, fmt.Errorf("ingest event %s: clock %d for %s exceeds the int64 column", ev.MsgID, d.Clock, d.Dest)
		}
	}
	id, ok, err := s.ingest(ctx, ev, dests)
	if err != nil {
		return 0, false, fmt.Errorf("ingest event %s of %s: %w", ev.MsgID, ev.Channel, err)
	}
	return id, ok, nil
}

func (s *Store) ingest(ctx context.Context, ev LedgerEvent, dests []LedgerDest) (int64, bool, error) {
	q := s.ledger()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() // no-op after Commit
	body := ev.Body
	if body == nil {
		body = []byte{} // NOT NULL
	}
	var (
		id    int64
		isNew bool
	)
	if q.ingestPG != "" {
		id, isNew, err = ingestPostgres(ctx, tx, q, ev, body, dests)
	} else {
		id, isNew, err = ingestSQLite(ctx, tx, q, ev, body, dests)
	}
	if err != nil || !isNew {
		return 0, false, err // already mapped: the deferred Rollback undoes the event row
	}
	if err := tx.Commit(); err != nil {
		return 0, false, fmt.Errorf("commit: %w", err)
	}
	return id, true, nil
}

// ingestSQLite is ingest's statements on SQLite (the transaction holds the write lock,
// so IDs follow commit order): Exec and LastInsertId, cheaper than RETURNING through
// the driver; then the origin mapping; then the outbox rows, one multi-row INSERT per
// outboxChunk destinations.
func ingestSQLite(ctx context.Context, tx *sql.Tx, q *ledgerSQL, ev LedgerEvent, body []byte, dests []LedgerDest) (int64, bool, error) {
	res, err := tx.ExecContext(ctx, q.insertEvent, ev.Network, ev.Channel, ev.MsgID, ev.Kind, body, unixNanos(ev.Received))
	if err != nil {
		return 0, false, fmt.Errorf("insert event: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, false, fmt.Errorf("insert event: last insert ID: %w", err)
	}
	if ev.MsgID != "" {
		res, err := tx.ExecContext(ctx, q.insertMap, id, ev.Channel, ev.MsgID)
		if err != nil {
			return 0, false, fmt.Errorf("map origin: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, false, fmt.Errorf("map origin: rows affected: %w", err)
		}
		if n == 0 {
			return 0, false, nil
		}
	}
	args := make([]any, 0, 4*min(len(dests), outboxChunk))
	for len(dests) > 0 {
		chunk := dests[:min(len(dests), outboxChunk)]
		dests = dests[len(chunk):]
		args = args[:0]
		for _, d := range chunk {
			args = append(args, id, d.Dest, d.Key, int64(d.Clock)) // Clock ≤ MaxInt64, checked by IngestEvent
		}
		if _, err := tx.ExecContext(ctx, q.insertOutbox[len(chunk)], args...); err != nil {
			return 0, false, fmt.Errorf("insert %d outbox entries: %w", len(chunk), err)
		}
	}
	return id, true, nil
}

// ingestPostgres is ingest on PostgreSQL: the one statement ingestPGSQL.
func ingestPostgres(ctx context.Context, tx *sql.Tx, q *ledgerSQL, ev LedgerEvent, body []byte, dests []LedgerDest) (int64, bool, error) {
	ds, keys, clocks := make([]string, len(dests)), make([]string, len(dests)), make([]int64, len(dests))
	for i, d := range dests {
		ds[i], keys[i], clocks[i] = d.Dest, d.Key, int64(d.Clock) // Clock ≤ MaxInt64, checked by IngestEvent
	}
	var (
		id    int64
		isNew bool
	)
	if err := tx.QueryRowContext(ctx, q.ingestPG, ev.Network, ev.Channel, ev.MsgID, ev.Kind, body,
		unixNanos(ev.Received), ds, keys, clocks).Scan(&id, &isNew); err != nil {
		return 0, false, fmt.Errorf("insert: %w", err)
	}
	return id, isNew, nil
}

// PendingEntries returns up to limit entries of dest that are neither delivered nor
// failed and whose ID is greater than after, in ID order, each with its event's Body
// and Received (gateway.Ledger). It does not look at NextAttempt: the caller schedules.
// Called by the gateway's dispatcher for dest; one indexed query. A limit ≤ 0 is
// ErrInvalidQuery.
func (s *Store) PendingEntries(ctx context.Context, dest string, after int64, limit int) ([]OutboxEntry, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("read pending entries of %s: limit %d: %w", dest, limit, ErrInvalidQuery)
	}
	rows, err := s.db.QueryContext(ctx, s.ledger().pending, dest, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read pending entries of %s: %w", dest, err)
	}
	defer rows.Close()
	var out []OutboxEntry
	for rows.Next() {
		var (
			e                 OutboxEntry
			clock, next, recv int64
		)
		if err := rows.Scan(&e.ID, &e.EventID, &e.Key, &clock, &e.Attempts, &next, &e.Body, &recv); err != nil {
			return nil, fmt.Errorf("read pending entries of %s: %w", dest, err)
		}
		if clock < 0 {
			return nil, fmt.Errorf("read pending entries of %s: entry %d has clock %d", dest, e.ID, clock)
		}
		e.Dest, e.Clock = dest, uint64(clock)
		e.NextAttempt, e.Received = fromUnixNanos(next), fromUnixNanos(recv)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read pending entries of %s: %w", dest, err)
	}
	return out, nil
}

// CountPending returns how many entries of dest are neither delivered nor failed
// (gateway.Ledger). One indexed count; called for metrics and backpressure.
func (s *Store) CountPending(ctx context.Context, dest string) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, s.ledger().countPending, dest).Scan(&n); err != nil {
		return 0, fmt.Errorf("count pending entries of %s: %w", dest, err)
	}
	return n, nil
}

// MarkDelivered marks the entry delivered at at and maps each non-empty element of ids
// in the entry's destination channel to its event, in one transaction (gateway.Ledger).
// Marking an entry again keeps the first done time and adds only IDs not yet mapped;
// an ID already mapped (to this or another event) is left as it is. An unknown entry is
// ErrUnknownEntry. Called by the dispatcher after the destination accepted the message.
func (s *Store) MarkDelivered(ctx context.Context, entryID int64, ids []string, at time.Time) error {
	if err := s.markDelivered(ctx, entryID, ids, at); err != nil {
		return fmt.Errorf("mark outbox entry %d delivered: %w", entryID, err)
	}
	return nil
}

func (s *Store) markDelivered(ctx context.Context, entryID int64, ids []string, at time.Time) error {
	q := s.ledger()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() // no-op after Commit
	var (
		eventID int64
		dest    string
	)
	err = tx.QueryRowContext(ctx, q.delivered, unixNanos(at), entryID).Scan(&eventID, &dest)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrUnknownEntry
	}
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	for _, id := range ids {
		if id == "" {
			continue // "" is no message ID (IngestEvent never maps it either)
		}
		if _, err := tx.ExecContext(ctx, q.insertMap, eventID, dest, id); err != nil {
			return fmt.Errorf("map %s: %w", id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// MarkRetry records a failed attempt of a pending entry: the attempt count, when to try
// next (zero: now) and the error text; the entry stays pending (gateway.Ledger). An
// unknown entry is ErrUnknownEntry. Called by the dispatcher; one statement.
func (s *Store) MarkRetry(ctx context.Context, entryID int64, attempts int, next time.Time, lastErr string) error {
	if err := s.updateEntry(ctx, s.ledger().retry, attempts, unixNanos(next), lastErr, entryID); err != nil {
		return fmt.Errorf("mark outbox entry %d for retry: %w", entryID, err)
	}
	return nil
}

// MarkFailed ends the entry as failed at at, with the attempt count and the error text;
// it is never returned by PendingEntries again (gateway.Ledger). A delivered entry stays
// delivered. An unknown entry is ErrUnknownEntry. Called by the dispatcher; one
// statement.
func (s *Store) MarkFailed(ctx context.Context, entryID int64, attempts int, lastErr string, at time.Time) error {
	if err := s.updateEntry(ctx, s.ledger().failed, attempts, lastErr, unixNanos(at), entryID); err != nil {
		return fmt.Errorf("mark outbox entry %d failed: %w", entryID, err)
	}
	return nil
}

// updateEntry runs an UPDATE of one outbox entry; no row updated is ErrUnknownEntry.
func (s *Store) updateEntry(ctx context.Context, query string, args ...any) error {
	res, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("rows affected: %w", err)
	}
	if n == 0 {
		return ErrUnknownEntry
	}
	return nil
}

// MappedIDs returns the IDs in channel dest of the message known in channel src as
// msgID, origin or delivered copy, in the order they were mapped; none when msgID is
// empty or unknown in src, or the message never reached dest (gateway.Ledger). Called
// by the gateway to translate replies, edits and redactions; two index lookups.
func (s *Store) MappedIDs(ctx context.Context, src, msgID, dest string) ([]string, error) {
	if msgID == "" {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, s.ledger().mapped, src, msgID, dest)
	if err != nil {
		return nil, fmt.Errorf("read IDs in %s of %s: %w", dest, msgID, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("read IDs in %s of %s: %w", dest, msgID, err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read IDs in %s of %s: %w", dest, msgID, err)
	}
	return out, nil
}

// unixNanos is t in Unix nanoseconds, 0 for the zero time (whose UnixNano is undefined).
func unixNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromUnixNanos inverts unixNanos: 0 is the zero time.
func fromUnixNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
