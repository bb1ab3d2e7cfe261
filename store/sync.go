package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/statusgate/statusgate/core/mailserver"
)

var _ mailserver.SyncStore = (*Store)(nil)

// LoadSync returns the chat's saved mailserver sync state (mailserver.SyncStore).
func (s *Store) LoadSync(ctx context.Context, chat string) (mailserver.SyncState, bool, error) {
	var (
		covered int64
		cursor  []byte
		to      sql.NullInt64
	)
	err := s.db.QueryRowContext(ctx, s.d.rebind(`SELECT covered, cursor, to_time FROM mailserver_sync WHERE chat = ?`), chat).
		Scan(&covered, &cursor, &to)
	if errors.Is(err, sql.ErrNoRows) {
		return mailserver.SyncState{}, false, nil
	}
	if err != nil {
		return mailserver.SyncState{}, false, fmt.Errorf("load sync state of %q: %w", chat, err)
	}
	st := mailserver.SyncState{Covered: time.Unix(0, covered)}
	if len(cursor) > 0 {
		st.Cursor = cursor
	}
	if to.Valid {
		st.To = time.Unix(0, to.Int64)
	}
	return st, true, nil
}

// SaveSync records the chat's mailserver sync state (mailserver.SyncStore).
func (s *Store) SaveSync(ctx context.Context, chat string, st mailserver.SyncState) error {
	var to sql.NullInt64
	if !st.To.IsZero() {
		to = sql.NullInt64{Int64: st.To.UnixNano(), Valid: true}
	}
	var cursor []byte
	if len(st.Cursor) > 0 {
		cursor = st.Cursor
	}
	_, err := s.db.ExecContext(ctx, s.d.rebind(`INSERT INTO mailserver_sync (chat, covered, cursor, to_time) VALUES (?, ?, ?, ?)
ON CONFLICT (chat) DO UPDATE SET covered = excluded.covered, cursor = excluded.cursor, to_time = excluded.to_time`),
		chat, st.Covered.UnixNano(), cursor, to)
	if err != nil {
		return fmt.Errorf("save sync state of %q: %w", chat, full(err))
	}
	return nil
}
