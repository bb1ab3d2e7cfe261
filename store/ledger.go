package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/statusgate/statusgate/records"
)

// The gateway ledger (gateway.Ledger): every accepted event (gateway_events), one
// ordered outbox per destination (gateway_outbox) and the cross-network message map
// (gateway_msgmap), in migrations 0004_gateway.sql, with the record types of package
// records; ledger_test.go checks at compile time that *Store implements gateway.Ledger.
//
// The single-record writes (IngestEvent, MarkDelivered) are the batch writes
// (IngestEvents, MarkDeliveredBatch) of one element: one code path. A batch is one
// transaction, so one commit (one WAL sync on SQLite with synchronous FULL) for all its
// elements: that is what the gateway's writer uses to group concurrent requests.

// rowsChunk is how many rows one multi-row INSERT carries on SQLite (outbox rows: 4
// parameters each, message map rows: 3): a batch of 64 two-destination events is two
// outbox INSERTs and one map INSERT.
const rowsChunk = 64

// ledgerSQL holds the ledger's statements, rebound for one dialect. They are built once
// per dialect at package initialization (pure string work, no I/O); the drivers cache
// the prepared forms per connection (pgx's statement cache; on SQLite a batch prepares
// its per-element statement once per transaction).
type ledgerSQL struct {
	// PostgreSQL: a whole IngestEvents or MarkDeliveredBatch in one statement (empty on
	// SQLite).
	ingestPG    string
	deliveredPG string
	// SQLite: the event row unless its origin is already mapped; multi-row message map
	// and outbox INSERTs ([n]: n rows); one entry marked delivered.
	insertEvent  string
	insertMap    [rowsChunk + 1]string // a mapped (channel, msg_id) is left as it is
	insertOutbox [rowsChunk + 1]string
	delivered    string

	pending      string
	countPending string
	maxClock     string
	addAlias     string
	retry        string
	failed       string
	mapped       string
	eventOf      string
}

var ledgerQueries = map[string]*ledgerSQL{
	DriverSQLite:   newLedgerSQL(dialects[DriverSQLite]),
	DriverPostgres: newLedgerSQL(dialects[DriverPostgres]),
}

func newLedgerSQL(d dialect) *ledgerSQL {
	q := &ledgerSQL{
		// state = 'pending' is a literal, not a parameter, so that both planners use the
		// partial index gateway_outbox_pending.
		pending: d.rebind(`SELECT o.id, o.event_id, o.idem_key, o.clock, o.attempts, o.next_attempt, e.body, e.received
FROM gateway_outbox o JOIN gateway_events e ON e.id = o.event_id
WHERE o.dest = ? AND o.state = 'pending' AND o.id > ?
ORDER BY o.id LIMIT ?`),
		countPending: d.rebind(`SELECT COUNT(*) FROM gateway_outbox WHERE dest = ? AND state = 'pending'`),
		maxClock:     d.rebind(`SELECT COALESCE(MAX(clock), 0) FROM gateway_outbox WHERE dest = ?`),
		// WHERE is required before ON CONFLICT in SQLite's INSERT … SELECT.
		addAlias: d.rebind(`INSERT INTO gateway_msgmap (event_id, channel, msg_id)
SELECT event_id, channel, ? FROM gateway_msgmap WHERE channel = ? AND msg_id = ?
ON CONFLICT (channel, msg_id) DO NOTHING`),
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
		eventOf: d.rebind(`SELECT e.network, e.channel, e.msg_id, e.kind, e.body, e.received
FROM gateway_msgmap m JOIN gateway_events e ON e.id = m.event_id
WHERE m.channel = ? AND m.msg_id = ?`),
	}
	if d.name == DriverPostgres {
		q.ingestPG, q.deliveredPG = ingestPGSQL, deliveredPGSQL
		return q
	}
	// ?3 = '': an event without MsgID is never deduplicated (and '' is never mapped).
	q.insertEvent = `INSERT INTO gateway_events (network, channel, msg_id, kind, body, received)
SELECT ?1, ?2, ?3, ?4, ?5, ?6
WHERE ?3 = '' OR NOT EXISTS (SELECT 1 FROM gateway_msgmap WHERE channel = ?2 AND msg_id = ?3)`
	// A second MarkDelivered keeps the first done_at; delivered is final.
	q.delivered = `UPDATE gateway_outbox SET
	done_at = CASE WHEN state = 'delivered' THEN done_at ELSE ? END,
	state = 'delivered'
WHERE id = ? RETURNING event_id, dest`
	for n := 1; n <= rowsChunk; n++ {
		q.insertMap[n] = "INSERT INTO gateway_msgmap (event_id, channel, msg_id) VALUES " +
			valuesRows(n, "(?,?,?)") + " ON CONFLICT (channel, msg_id) DO NOTHING"
		q.insertOutbox[n] = "INSERT INTO gateway_outbox (event_id, dest, idem_key, clock) VALUES " +
			valuesRows(n, "(?,?,?,?)")
	}
	return q
}

// valuesRows is n copies of row, comma-separated.
func valuesRows(n int, row string) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	return b.String()
}

// ingestPGSQL is IngestEvents on PostgreSQL in one statement, so one round trip and no
// explicit transaction (a statement is atomic). The advisory lock (held to the commit)
// serializes ingests: an identity column hands out IDs in call order, not commit order,
// and a dispatcher paging PendingEntries by "ID > after" would skip an entry that
// commits after a higher one; under the lock IDs follow commit order, as gateway.Ledger
// promises (SQLite's BEGIN IMMEDIATE does the same). The MATERIALIZED CTE l takes the
// lock before any row gets an ID.
//
// b draws each event's ID from the identity sequence up front, in batch order, so the
// origin mappings can be inserted first: (channel, msg_id) is unique, and ON CONFLICT DO
// NOTHING skips an origin already mapped (by an earlier ingest, a delivered copy, or an
// earlier element of this batch, the INSERT taking the rows in batch order). Only the
// events whose origin was mapped (or whose MsgID is empty) are then inserted, with their
// outbox rows; a duplicate leaves nothing but an unused sequence value. The foreign keys
// are checked at the end of the statement, when the events exist.
//
// Parameters: $1…$6 the events' columns as arrays in batch order; $7…$10 the
// destinations of all events concatenated in order, each with its event's 1-based
// position in the batch ($7), dest, key and clock. The result is one row per event in
// batch order: its drawn ID and whether it is new.
const ingestPGSQL = `WITH l AS MATERIALIZED (
	SELECT pg_advisory_xact_lock(7355608002), pg_get_serial_sequence('gateway_events', 'id') AS seq),
b AS MATERIALIZED (
	SELECT b.n, b.network, b.channel, b.msg_id, b.kind, b.body, b.received, nextval(l.seq) AS id
	FROM l, unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::bigint[])
		WITH ORDINALITY AS b(network, channel, msg_id, kind, body, received, n)
	ORDER BY b.n),
m AS (INSERT INTO gateway_msgmap (event_id, channel, msg_id)
	SELECT id, channel, msg_id FROM b WHERE msg_id <> '' ORDER BY n
	ON CONFLICT (channel, msg_id) DO NOTHING RETURNING event_id),
k AS MATERIALIZED (SELECT b.*, b.msg_id = '' OR b.id IN (SELECT event_id FROM m) AS new FROM b),
e AS (INSERT INTO gateway_events (id, network, channel, msg_id, kind, body, received) OVERRIDING SYSTEM VALUE
	SELECT id, network, channel, msg_id, kind, body, received FROM k WHERE new ORDER BY n),
o AS (INSERT INTO gateway_outbox (event_id, dest, idem_key, clock)
	SELECT k.id, d.dest, d.key, d.clock
	FROM unnest($7::bigint[], $8::text[], $9::text[], $10::bigint[]) WITH ORDINALITY AS d(ev, dest, key, clock, i)
	JOIN k ON k.n = d.ev
	WHERE k.new ORDER BY d.i)
SELECT id, new FROM k ORDER BY n`

// deliveredPGSQL is MarkDeliveredBatch on PostgreSQL in one statement. $1, $2: the
// entries (distinct) and their done times; $3, $4: the IDs to map, each with its entry,
// in order. A second MarkDelivered keeps the first done_at; delivered is final. The
// result is the IDs of the entries found.
const deliveredPGSQL = `WITH d AS (SELECT * FROM unnest($1::bigint[], $2::bigint[]) AS d(id, at)),
u AS (UPDATE gateway_outbox o SET
		done_at = CASE WHEN o.state = 'delivered' THEN o.done_at ELSE d.at END,
		state = 'delivered'
	FROM d WHERE o.id = d.id RETURNING o.id, o.event_id, o.dest),
m AS (INSERT INTO gateway_msgmap (event_id, channel, msg_id)
	SELECT u.event_id, u.dest, x.msg_id
	FROM unnest($3::bigint[], $4::text[]) WITH ORDINALITY AS x(entry, msg_id, i) JOIN u ON u.id = x.entry
	ORDER BY x.i
	ON CONFLICT (channel, msg_id) DO NOTHING)
SELECT id FROM u`

func (s *Store) ledger() *ledgerSQL { return ledgerQueries[s.d.name] }

// IngestEvent records ev, maps (ev.Channel, ev.MsgID) to it when MsgID is not empty,
// and creates one pending outbox entry per element of dests, in that order, all in one
// transaction (gateway.Ledger). When (ev.Channel, ev.MsgID) is already mapped, as an
// origin or as a delivered copy, it writes nothing and returns 0, false. A Clock above
// math.MaxInt64 is an error (the column is a signed 64-bit integer). It is
// IngestEvents of one element; the gateway's writer batches instead.
func (s *Store) IngestEvent(ctx context.Context, ev records.Event, dests []records.Dest) (eventID int64, inserted bool, err error) {
	if err := checkClocks(dests); err != nil {
		return 0, false, fmt.Errorf("ingest event %s of %s: %w", ev.MsgID, ev.Channel, err)
	}
	res, err := s.ingestEvents(ctx, []records.Ingest{{Event: ev, Dests: dests}})
	if err != nil {
		return 0, false, fmt.Errorf("ingest event %s of %s: %w", ev.MsgID, ev.Channel, full(err))
	}
	return res[0].EventID, res[0].Inserted, nil
}

// IngestEvents is IngestEvent for each element of batch, in order and in one
// transaction (gateway.Ledger): results[i] is batch[i]'s outcome, and an element whose
// origin an earlier element has (or that is already mapped) is a duplicate (0, false).
// Event and entry IDs increase in batch order. On error nothing is written; a Clock above
// math.MaxInt64 anywhere fails the whole batch before it starts. Called by the gateway's
// writer with the events it collected; it blocks on the database, for the commit's sync
// on SQLite and, on PostgreSQL, for concurrent ingests (which it serializes so that entry
// IDs follow commit order). An empty batch does nothing.
func (s *Store) IngestEvents(ctx context.Context, batch []records.Ingest) (results []records.Ingested, err error) {
	for i, in := range batch {
		if err := checkClocks(in.Dests); err != nil {
			return nil, fmt.Errorf("ingest %d events: element %d (%s of %s): %w", len(batch), i, in.Event.MsgID, in.Event.Channel, err)
		}
	}
	if len(batch) == 0 {
		return []records.Ingested{}, nil
	}
	res, err := s.ingestEvents(ctx, batch)
	if err != nil {
		return nil, fmt.Errorf("ingest %d events: %w", len(batch), full(err))
	}
	return res, nil
}

// checkClocks rejects a Clock the signed 64-bit column cannot hold.
func checkClocks(dests []records.Dest) error {
	for _, d := range dests {
		if d.Clock > math.MaxInt64 {
			return fmt.Errorf("clock %d for %s exceeds the int64 column", d.Clock, d.Dest)
		}
	}
	return nil
}

// ingestEvents is IngestEvents after the clock check, for a non-empty batch.
func (s *Store) ingestEvents(ctx context.Context, batch []records.Ingest) ([]records.Ingested, error) {
	if q := s.ledger(); q.ingestPG != "" {
		return s.ingestPostgres(ctx, q, batch)
	}
	return s.ingestSQLite(ctx, batch)
}

// bodyOf is ev.Body, never nil (the column is NOT NULL).
func bodyOf(ev records.Event) []byte {
	if ev.Body == nil {
		return []byte{}
	}
	return ev.Body
}

// ingestSQLite is IngestEvents on SQLite. The transaction holds the write lock (BEGIN
// IMMEDIATE), so IDs follow commit order and "origin not mapped" stays true until the
// commit: each event row is inserted only if its origin is not mapped (one prepared
// statement per element; LastInsertId is cheaper than RETURNING through the driver), an
// origin repeated in the batch is caught in memory, and the origin mappings and outbox
// rows of all new events follow in multi-row INSERTs of up to rowsChunk rows.
func (s *Store) ingestSQLite(ctx context.Context, batch []records.Ingest) ([]records.Ingested, error) {
	q := s.ledger()
	unlock, err := s.lockWrite(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() // no-op after Commit
	stmt, err := tx.PrepareContext(ctx, q.insertEvent)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	defer stmt.Close()
	var (
		results  = make([]records.Ingested, len(batch))
		seen     map[[2]string]bool // origins of this batch, when it has several
		mapArgs  []any              // event_id, channel, msg_id
		outbArgs []any              // event_id, dest, idem_key, clock
	)
	if len(batch) > 1 {
		seen = make(map[[2]string]bool, len(batch))
	}
	for i, in := range batch {
		ev := in.Event
		if ev.MsgID != "" && seen != nil {
			origin := [2]string{ev.Channel, ev.MsgID}
			if seen[origin] {
				continue // a duplicate of an earlier element
			}
			seen[origin] = true
		}
		res, err := stmt.ExecContext(ctx, ev.Network, ev.Channel, ev.MsgID, ev.Kind, bodyOf(ev), unixNanos(ev.Received))
		if err != nil {
			return nil, fmt.Errorf("insert event %d (%s of %s): %w", i, ev.MsgID, ev.Channel, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, fmt.Errorf("insert event %d: rows affected: %w", i, err)
		} else if n == 0 {
			continue // already mapped
		}
		id, err := res.LastInsertId()
		if err != nil {
			return nil, fmt.Errorf("insert event %d: last insert ID: %w", i, err)
		}
		results[i] = records.Ingested{EventID: id, Inserted: true}
		if ev.MsgID != "" {
			mapArgs = append(mapArgs, id, ev.Channel, ev.MsgID)
		}
		for _, d := range in.Dests {
			outbArgs = append(outbArgs, id, d.Dest, d.Key, int64(d.Clock)) // Clock ≤ MaxInt64, checked by the caller
		}
	}
	if err := execRows(ctx, tx, q.insertMap[:], mapArgs, 3); err != nil {
		return nil, fmt.Errorf("map origins: %w", err)
	}
	if err := execRows(ctx, tx, q.insertOutbox[:], outbArgs, 4); err != nil {
		return nil, fmt.Errorf("insert outbox entries: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return results, nil
}

// execRows inserts the rows of args (width parameters each, in order) with the
// multi-row statements stmts ([n]: n rows), up to rowsChunk rows per statement.
func execRows(ctx context.Context, tx *sql.Tx, stmts []string, args []any, width int) error {
	for len(args) > 0 {
		n := min(len(args)/width, rowsChunk)
		if _, err := tx.ExecContext(ctx, stmts[n], args[:n*width]...); err != nil {
			return fmt.Errorf("%d rows: %w", n, err)
		}
		args = args[n*width:]
	}
	return nil
}

// ingestPostgres is IngestEvents on PostgreSQL: the one statement ingestPGSQL, outside
// an explicit transaction (the statement is one).
func (s *Store) ingestPostgres(ctx context.Context, q *ledgerSQL, batch []records.Ingest) ([]records.Ingested, error) {
	var (
		networks, channels, msgIDs, kinds = make([]string, len(batch)), make([]string, len(batch)), make([]string, len(batch)), make([]string, len(batch))
		bodies                            = make([][]byte, len(batch))
		received                          = make([]int64, len(batch))
		evs                               []int64
		ds, keys                          []string
		clocks                            []int64
	)
	for i, in := range batch {
		ev := in.Event
		networks[i], channels[i], msgIDs[i], kinds[i] = ev.Network, ev.Channel, ev.MsgID, ev.Kind
		bodies[i], received[i] = bodyOf(ev), unixNanos(ev.Received)
		for _, d := range in.Dests {
			evs = append(evs, int64(i+1))
			ds, keys = append(ds, d.Dest), append(keys, d.Key)
			clocks = append(clocks, int64(d.Clock)) // Clock ≤ MaxInt64, checked by the caller
		}
	}
	// Empty arrays, not NULL, for a batch without destinations.
	if evs == nil {
		evs, ds, keys, clocks = []int64{}, []string{}, []string{}, []int64{}
	}
	rows, err := s.db.QueryContext(ctx, q.ingestPG, networks, channels, msgIDs, kinds, bodies, received, evs, ds, keys, clocks)
	if err != nil {
		return nil, fmt.Errorf("insert: %w", err)
	}
	defer rows.Close()
	results := make([]records.Ingested, 0, len(batch))
	for rows.Next() {
		var (
			id    int64
			isNew bool
		)
		if err := rows.Scan(&id, &isNew); err != nil {
			return nil, fmt.Errorf("insert: %w", err)
		}
		if !isNew {
			id = 0
		}
		results = append(results, records.Ingested{EventID: id, Inserted: isNew})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("insert: %w", err)
	}
	if len(results) != len(batch) {
		return nil, fmt.Errorf("insert: %d results for %d events", len(results), len(batch))
	}
	return results, nil
}

// PendingEntries returns up to limit entries of dest that are neither delivered nor
// failed and whose ID is greater than after, in ID order, each with its event's Body
// and Received (gateway.Ledger). It does not look at NextAttempt: the caller schedules.
// Called by the gateway's dispatcher for dest; one indexed query. A limit ≤ 0 is
// ErrInvalidQuery.
func (s *Store) PendingEntries(ctx context.Context, dest string, after int64, limit int) ([]records.OutboxEntry, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("read pending entries of %s: limit %d: %w", dest, limit, ErrInvalidQuery)
	}
	rows, err := s.db.QueryContext(ctx, s.ledger().pending, dest, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read pending entries of %s: %w", dest, err)
	}
	defer rows.Close()
	var out []records.OutboxEntry
	for rows.Next() {
		var (
			e                 records.OutboxEntry
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

// AddAliases maps each Alias in its Channel to the event known there as MsgID, in one
// transaction (gateway.Ledger). Unknown messages and aliases already mapped are
// skipped.
func (s *Store) AddAliases(ctx context.Context, aliases []records.Alias) error {
	if len(aliases) == 0 {
		return nil
	}
	unlock, err := s.lockWrite(ctx)
	if err != nil {
		return fmt.Errorf("add %d aliases: begin: %w", len(aliases), err)
	}
	defer unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add %d aliases: begin: %w", len(aliases), err)
	}
	defer tx.Rollback() // no-op after Commit
	stmt, err := tx.PrepareContext(ctx, s.ledger().addAlias)
	if err != nil {
		return fmt.Errorf("add %d aliases: prepare: %w", len(aliases), err)
	}
	defer stmt.Close()
	for _, a := range aliases {
		if a.Alias == "" || a.MsgID == "" {
			continue
		}
		if _, err := stmt.ExecContext(ctx, a.Alias, a.Channel, a.MsgID); err != nil {
			return fmt.Errorf("add alias %s of %s: %w", a.Alias, a.MsgID, full(err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("add %d aliases: commit: %w", len(aliases), full(err))
	}
	return nil
}

// MaxClock returns the largest Status clock fixed for any entry of dest, 0 if none
// (gateway.Ledger): the gateway resumes its chat's Lamport clock from it after a
// restart, so that new messages sort after those sent before.
func (s *Store) MaxClock(ctx context.Context, dest string) (uint64, error) {
	var c int64
	if err := s.db.QueryRowContext(ctx, s.ledger().maxClock, dest).Scan(&c); err != nil {
		return 0, fmt.Errorf("read max clock of %s: %w", dest, err)
	}
	return uint64(max(c, 0)), nil
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
// records.ErrUnknownEntry. It is MarkDeliveredBatch of one element.
func (s *Store) MarkDelivered(ctx context.Context, entryID int64, ids []string, at time.Time) error {
	if err := s.markDelivered(ctx, []records.Delivery{{EntryID: entryID, IDs: ids, At: at}}); err != nil {
		return fmt.Errorf("mark outbox entry %d delivered: %w", entryID, full(err))
	}
	return nil
}

// MarkDeliveredBatch is MarkDelivered for each element of batch, in order and in one
// transaction (gateway.Ledger): an entry marked twice keeps the first element's At, and
// IDs are mapped in batch order. If any entry is unknown the call is records.ErrUnknownEntry
// (naming the first such entry) and nothing is written. Called by the gateway's writer
// with the deliveries it collected; an empty batch does nothing.
func (s *Store) MarkDeliveredBatch(ctx context.Context, batch []records.Delivery) error {
	if len(batch) == 0 {
		return nil
	}
	if err := s.markDelivered(ctx, batch); err != nil {
		return fmt.Errorf("mark %d outbox entries delivered: %w", len(batch), full(err))
	}
	return nil
}

// errUnknownEntry is records.ErrUnknownEntry naming the entry.
func errUnknownEntry(id int64) error { return fmt.Errorf("entry %d: %w", id, records.ErrUnknownEntry) }

func (s *Store) markDelivered(ctx context.Context, batch []records.Delivery) error {
	if q := s.ledger(); q.deliveredPG != "" {
		return s.markDeliveredPostgres(ctx, q, batch)
	}
	return s.markDeliveredSQLite(ctx, batch)
}

// markDeliveredSQLite is MarkDeliveredBatch on SQLite: one prepared UPDATE … RETURNING
// per element, then the IDs of all elements in multi-row INSERTs.
func (s *Store) markDeliveredSQLite(ctx context.Context, batch []records.Delivery) error {
	q := s.ledger()
	unlock, err := s.lockWrite(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() // no-op after Commit
	stmt, err := tx.PrepareContext(ctx, q.delivered)
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	defer stmt.Close()
	var mapArgs []any // event_id, channel, msg_id
	for _, d := range batch {
		var (
			eventID int64
			dest    string
		)
		found, err := scanDelivered(ctx, stmt, d, &eventID, &dest)
		if err != nil {
			return fmt.Errorf("update entry %d: %w", d.EntryID, err)
		}
		if !found {
			return errUnknownEntry(d.EntryID)
		}
		for _, id := range d.IDs {
			if id != "" { // "" is no message ID (IngestEvent never maps it either)
				mapArgs = append(mapArgs, eventID, dest, id)
			}
		}
	}
	if err := execRows(ctx, tx, q.insertMap[:], mapArgs, 3); err != nil {
		return fmt.Errorf("map IDs: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// scanDelivered runs the prepared q.delivered for d to completion, which ends the
// statement cheaply (resetting it on its RETURNING row costs far more through
// go-sqlite3), and scans the entry's event and destination; found is false when no row
// was updated.
func scanDelivered(ctx context.Context, stmt *sql.Stmt, d records.Delivery, eventID *int64, dest *string) (found bool, err error) {
	rows, err := stmt.QueryContext(ctx, unixNanos(d.At), d.EntryID)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(eventID, dest); err != nil {
			return false, err
		}
		found = true
	}
	return found, rows.Err()
}

// markDeliveredPostgres is MarkDeliveredBatch on PostgreSQL: the one statement
// deliveredPGSQL, in a transaction that is rolled back if an entry is missing (for a
// single entry the statement alone, which then writes nothing).
func (s *Store) markDeliveredPostgres(ctx context.Context, q *ledgerSQL, batch []records.Delivery) error {
	var (
		entries = make([]int64, 0, len(batch)) // distinct, first occurrence's At
		ats     = make([]int64, 0, len(batch))
		first   = make(map[int64]bool, len(batch))
		mapEnts = []int64{}
		mapIDs  = []string{}
	)
	for _, d := range batch {
		if !first[d.EntryID] {
			first[d.EntryID] = true
			entries, ats = append(entries, d.EntryID), append(ats, unixNanos(d.At))
		}
		for _, id := range d.IDs {
			if id != "" { // "" is no message ID (IngestEvent never maps it either)
				mapEnts, mapIDs = append(mapEnts, d.EntryID), append(mapIDs, id)
			}
		}
	}
	var (
		query func(ctx context.Context, query string, args ...any) (*sql.Rows, error)
		tx    *sql.Tx
	)
	if len(entries) == 1 {
		query = s.db.QueryContext
	} else {
		var err error
		if tx, err = s.db.BeginTx(ctx, nil); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		defer tx.Rollback() // no-op after Commit
		query = tx.QueryContext
	}
	found, err := queryIDs(ctx, query, q.deliveredPG, entries, ats, mapEnts, mapIDs)
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	if len(found) != len(entries) {
		for _, id := range entries {
			if !slices.Contains(found, id) {
				return errUnknownEntry(id)
			}
		}
	}
	if tx != nil {
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
	}
	return nil
}

// queryIDs runs a query whose result is one int64 column.
func queryIDs(ctx context.Context, query func(context.Context, string, ...any) (*sql.Rows, error), q string, args ...any) ([]int64, error) {
	rows, err := query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// MarkRetry records a failed attempt of a pending entry: the attempt count, when to try
// next (zero: now) and the error text; the entry stays pending (gateway.Ledger). An
// unknown entry is records.ErrUnknownEntry. Called by the dispatcher; one statement.
func (s *Store) MarkRetry(ctx context.Context, entryID int64, attempts int, next time.Time, lastErr string) error {
	if err := s.updateEntry(ctx, s.ledger().retry, attempts, unixNanos(next), lastErr, entryID); err != nil {
		return fmt.Errorf("mark outbox entry %d for retry: %w", entryID, full(err))
	}
	return nil
}

// MarkFailed ends the entry as failed at at, with the attempt count and the error text;
// it is never returned by PendingEntries again (gateway.Ledger). A delivered entry stays
// delivered. An unknown entry is records.ErrUnknownEntry. Called by the dispatcher; one
// statement.
func (s *Store) MarkFailed(ctx context.Context, entryID int64, attempts int, lastErr string, at time.Time) error {
	if err := s.updateEntry(ctx, s.ledger().failed, attempts, lastErr, unixNanos(at), entryID); err != nil {
		return fmt.Errorf("mark outbox entry %d failed: %w", entryID, full(err))
	}
	return nil
}

// updateEntry runs an UPDATE of one outbox entry; no row updated is records.ErrUnknownEntry.
func (s *Store) updateEntry(ctx context.Context, query string, args ...any) error {
	unlock, err := s.lockWrite(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	res, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("rows affected: %w", err)
	}
	if n == 0 {
		return records.ErrUnknownEntry
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

// EventOf returns the event of the message known in channel as msgID, origin or
// delivered copy (gateway.Ledger): found is false when msgID is empty or unknown in
// channel. Called by the gateway to learn who wrote the target of an edit or delete; one
// index lookup.
func (s *Store) EventOf(ctx context.Context, channel, msgID string) (ev records.Event, found bool, err error) {
	if msgID == "" {
		return ev, false, nil
	}
	var received int64
	err = s.db.QueryRowContext(ctx, s.ledger().eventOf, channel, msgID).
		Scan(&ev.Network, &ev.Channel, &ev.MsgID, &ev.Kind, &ev.Body, &received)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return records.Event{}, false, nil
	case err != nil:
		return records.Event{}, false, fmt.Errorf("read event of %s in %s: %w", msgID, channel, err)
	}
	ev.Received = fromUnixNanos(received)
	return ev, true, nil
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
