package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// SeenRetention is how long MarkSeen remembers a message: a little longer than the
// 30 days of history a Status mailserver serves, after which nobody re-delivers it.
const SeenRetention = 31 * 24 * time.Hour

// seenPruneEvery is how many inserts pass between two prunes of old rows.
const seenPruneEvery = 512

// SeenMax bounds the rows MarkSeen keeps, every owner together: remote parties decide
// how many messages reach us within SeenRetention. Overflow policy: oldest first,
// applied with the retention every seenPruneEvery inserts, so the table holds at most
// SeenMax + seenPruneEvery rows; the marks dropped are counted (SeenEvicted). A message
// whose mark was dropped is given again if it is re-delivered and still decrypts: a
// DH-mode message does; a Double Ratchet message does not (its key was deleted when it
// was processed: a replay).
const SeenMax = 100_000

// MarkSeen records that the identity owner (its compressed key) was given the 1:1
// message id at at, and reports whether that is new (status.SeenStore). Every
// seenPruneEvery inserts it deletes the rows older than SeenRetention, then the oldest
// beyond SeenMax.
func (s *Store) MarkSeen(ctx context.Context, owner []byte, id [32]byte, at time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, s.d.rebind(`INSERT INTO direct_seen (owner, id, seen_at) VALUES (?, ?, ?) ON CONFLICT (owner, id) DO NOTHING`),
		owner, id[:], at.UnixNano())
	if err != nil {
		return false, fmt.Errorf("mark message %x seen: %w", id[:4], full(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("mark message %x seen: %w", id[:4], err)
	}
	if n == 1 && s.seenInserts.Add(1)%seenPruneEvery == 0 {
		if _, err := s.db.ExecContext(ctx, s.d.rebind(`DELETE FROM direct_seen WHERE seen_at < ?`), at.Add(-SeenRetention).UnixNano()); err != nil {
			return true, fmt.Errorf("prune seen messages: %w", err)
		}
		res, err := s.db.ExecContext(ctx, s.d.rebind(`DELETE FROM direct_seen WHERE seen_at < (
	SELECT seen_at FROM direct_seen ORDER BY seen_at DESC LIMIT 1 OFFSET ?)`), s.seenMax-1)
		if err != nil {
			return true, fmt.Errorf("cap seen messages at %d: %w", s.seenMax, err)
		}
		if n, err := res.RowsAffected(); err == nil {
			s.seenEvicted.Add(uint64(n))
		}
	}
	return n == 1, nil
}

// SeenEvicted returns how many marks MarkSeen dropped to keep SeenMax since Open.
func (s *Store) SeenEvicted() uint64 { return s.seenEvicted.Load() }

// Seen reports whether MarkSeen recorded id for owner (status.SeenStore).
func (s *Store) Seen(ctx context.Context, owner []byte, id [32]byte) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, s.d.rebind(`SELECT 1 FROM direct_seen WHERE owner = ? AND id = ?`), owner, id[:]).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up message %x: %w", id[:4], err)
	}
	return true, nil
}
