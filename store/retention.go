package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Retention and size caps of the ledger (issue 15 finding 11): without them every
// event, delivered entry and message-map row was kept for ever, and the database grew
// until the disk was full. The archive's are in archive.go (Prune, PruneBytes).

// pruneBatch bounds the rows one pruning transaction deletes, so that a large backlog
// never holds SQLite's write lock (or PostgreSQL's row locks) for long: the gateway's
// writers get their turn between batches.
const pruneBatch = 1000

// LedgerPruned is what one PruneLedger deleted.
type LedgerPruned struct {
	Entries int64 // delivered and failed outbox entries
	Events  int64 // events, each with its message-map rows
}

// PruneLedger deletes what the gateway ledger no longer needs, oldest first, in
// transactions of at most pruneBatch rows:
//
//  1. delivered and failed outbox entries completed before before;
//  2. events received before before that no entry refers to any more, with their
//     message-map rows;
//  3. when maxBytes > 0 and the events' bodies hold more than maxBytes bytes, the
//     oldest events without a pending entry, with their completed entries and
//     message-map rows, until the bodies kept fit (pending events count but are kept,
//     so the cap is exceeded only by what is still to be delivered).
//
// A pending entry and its event are never deleted, nor the newest entry of each
// destination (MaxClock resumes the Status clock from it). What is deleted is
// forgotten: a reply to or an edit of a pruned message is no longer linked, and an
// origin re-delivered after its event was pruned is relayed again (networks re-deliver
// within minutes or hours; Status catch-up resumes from its sync cursor). It is safe to
// run concurrently with the gateway's writers.
func (s *Store) PruneLedger(ctx context.Context, before time.Time, maxBytes int64) (LedgerPruned, error) {
	var p LedgerPruned
	keep, err := s.newestEntries(ctx)
	if err != nil {
		return p, fmt.Errorf("prune ledger: %w", err)
	}
	t := before.UnixNano()
	entries := s.d.rebind(`DELETE FROM gateway_outbox WHERE id IN (SELECT id FROM gateway_outbox
WHERE state <> 'pending' AND done_at < ?` + notIn("id", keep) + ` ORDER BY done_at LIMIT ` + strconv.Itoa(pruneBatch) + `)`)
	for {
		n, err := s.exec(ctx, entries, t)
		if err != nil {
			return p, fmt.Errorf("prune ledger entries done before %v: %w", before, err)
		}
		p.Entries += n
		if n < pruneBatch {
			break
		}
	}
	byTime := `SELECT e.id FROM gateway_events e WHERE e.received < ?
AND NOT EXISTS (SELECT 1 FROM gateway_outbox o WHERE o.event_id = e.id) ORDER BY e.id LIMIT ` + strconv.Itoa(pruneBatch)
	for {
		_, n, err := s.pruneEvents(ctx, byTime, t)
		if err != nil {
			return p, fmt.Errorf("prune ledger events received before %v: %w", before, err)
		}
		p.Events += n
		if n < pruneBatch {
			break
		}
	}
	if maxBytes <= 0 {
		return p, nil
	}
	var total int64
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(LENGTH(body)), 0) FROM gateway_events`).Scan(&total); err != nil {
		return p, fmt.Errorf("prune ledger: size: %w", err)
	}
	if total <= maxBytes {
		return p, nil
	}
	// The newest event whose body, with those of all newer events, passes the cap:
	// it and every older event are beyond it.
	var cut int64
	err = s.db.QueryRowContext(ctx, s.d.rebind(`SELECT id FROM (SELECT id, SUM(LENGTH(body)) OVER (ORDER BY id DESC) AS acc
FROM gateway_events) t WHERE acc > ? ORDER BY id DESC LIMIT 1`), maxBytes).Scan(&cut)
	if err != nil {
		return p, fmt.Errorf("prune ledger: size cut: %w", err)
	}
	bySize := `SELECT e.id FROM gateway_events e WHERE e.id <= ?
AND NOT EXISTS (SELECT 1 FROM gateway_outbox o WHERE o.event_id = e.id AND (o.state = 'pending'` + in("o.id", keep) + `))
ORDER BY e.id LIMIT ` + strconv.Itoa(pruneBatch)
	for {
		ne, n, err := s.pruneEvents(ctx, bySize, cut)
		if err != nil {
			return p, fmt.Errorf("prune ledger to %d bytes: %w", maxBytes, err)
		}
		p.Entries += ne
		p.Events += n
		if n < pruneBatch {
			break
		}
	}
	return p, nil
}

// pruneEvents deletes, in one transaction, the events cand selects (a query of event
// IDs taking arg), with their outbox entries (none but completed ones: cand excludes
// events with pending entries) and message-map rows. It returns the entries and
// events deleted.
func (s *Store) pruneEvents(ctx context.Context, cand string, arg int64) (entries, events int64, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() // no-op after Commit
	del := func(q string) (int64, error) {
		res, err := tx.ExecContext(ctx, s.d.rebind(q+cand+")"), arg)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}
	if entries, err = del(`DELETE FROM gateway_outbox WHERE event_id IN (`); err != nil {
		return 0, 0, fmt.Errorf("delete entries: %w", full(err))
	}
	if _, err = del(`DELETE FROM gateway_msgmap WHERE event_id IN (`); err != nil {
		return 0, 0, fmt.Errorf("delete message map: %w", full(err))
	}
	if events, err = del(`DELETE FROM gateway_events WHERE id IN (`); err != nil {
		return 0, 0, fmt.Errorf("delete events: %w", full(err))
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, fmt.Errorf("commit: %w", full(err))
	}
	return entries, events, nil
}

// newestEntries returns the ID of the newest outbox entry of each destination.
func (s *Store) newestEntries(ctx context.Context) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT MAX(id) FROM gateway_outbox GROUP BY dest`)
	if err != nil {
		return nil, fmt.Errorf("newest entries: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("newest entries: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("newest entries: %w", err)
	}
	return ids, nil
}

// exec runs a statement and returns the rows it affected.
func (s *Store) exec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, full(err)
	}
	return res.RowsAffected()
}

// notIn is " AND col NOT IN (ids…)", or "" for no ids; in is " OR col IN (ids…)".
// The IDs are integers from the database, written as literals.
func notIn(col string, ids []int64) string {
	if len(ids) == 0 {
		return ""
	}
	return " AND " + col + " NOT IN (" + idList(ids) + ")"
}

func in(col string, ids []int64) string {
	if len(ids) == 0 {
		return ""
	}
	return " OR " + col + " IN (" + idList(ids) + ")"
}

func idList(ids []int64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(s, ",")
}

// LedgerBytes returns the bytes of the events' bodies, what PruneLedger's maxBytes
// bounds.
func (s *Store) LedgerBytes(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(LENGTH(body)), 0) FROM gateway_events`).Scan(&n); err != nil {
		return 0, fmt.Errorf("ledger size: %w", err)
	}
	return n, nil
}
