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

// MarkSeen records that the identity owner (its compressed key) was given the 1:1
// message id at at, and reports whether that is new (status.SeenStore). Every
// seenPruneEvery inserts it deletes the rows older than SeenRetention.
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
	}
	return n == 1, nil
}

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
