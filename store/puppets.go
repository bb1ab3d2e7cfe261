package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/statusgate/statusgate/records"
)

const puppetColumns = `network, account, remote_user, chat_key, display_name, first_seen, last_seen`

// UpsertPuppet inserts r, or updates the row of (Network, Account, User): first_seen is
// kept, last_seen and chat_key are replaced, display_name is replaced unless
// r.DisplayName is empty. It fails if another remote user's row holds r.ChatKey
// (puppet.Store).
func (s *Store) UpsertPuppet(ctx context.Context, r records.Puppet) error {
	unlock, err := s.lockWrite(ctx)
	if err != nil {
		return fmt.Errorf("upsert puppet %s/%s: %w", r.Network, r.Account, err)
	}
	defer unlock()
	_, err = s.db.ExecContext(ctx, s.d.rebind(`INSERT INTO puppets (`+puppetColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (network, account, remote_user) DO UPDATE SET
	chat_key = excluded.chat_key,
	display_name = CASE WHEN excluded.display_name = '' THEN puppets.display_name ELSE excluded.display_name END,
	last_seen = excluded.last_seen`),
		r.Network, r.Account, r.User, r.ChatKey, r.DisplayName, r.FirstSeen.UnixNano(), r.LastSeen.UnixNano())
	if err != nil {
		return fmt.Errorf("upsert puppet %s/%s: %w", r.Network, r.Account, full(err))
	}
	return nil
}

// PuppetByRemote returns the row of (network, account, user); ok is false when there is
// none (puppet.Store).
func (s *Store) PuppetByRemote(ctx context.Context, network, account, user string) (records.Puppet, bool, error) {
	row := s.db.QueryRowContext(ctx, s.d.rebind(`SELECT `+puppetColumns+` FROM puppets
WHERE network = ? AND account = ? AND remote_user = ?`), network, account, user)
	r, ok, err := scanPuppet(row)
	if err != nil {
		return records.Puppet{}, false, fmt.Errorf("read puppet %s/%s: %w", network, account, err)
	}
	return r, ok, nil
}

// PuppetByChatKey returns the row whose chat_key is chatKey; ok is false when there is
// none (puppet.Store).
func (s *Store) PuppetByChatKey(ctx context.Context, chatKey string) (records.Puppet, bool, error) {
	row := s.db.QueryRowContext(ctx, s.d.rebind(`SELECT `+puppetColumns+` FROM puppets WHERE chat_key = ?`), chatKey)
	r, ok, err := scanPuppet(row)
	if err != nil {
		return records.Puppet{}, false, fmt.Errorf("read puppet by chat key: %w", err)
	}
	return r, ok, nil
}

// PuppetsByUser returns the rows of user on network under every account, ordered by
// account in the database's collation (puppet.Store).
func (s *Store) PuppetsByUser(ctx context.Context, network, user string) ([]records.Puppet, error) {
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT `+puppetColumns+` FROM puppets
WHERE network = ? AND remote_user = ? ORDER BY account`), network, user)
	if err != nil {
		return nil, fmt.Errorf("read puppets of %s user: %w", network, err)
	}
	defer rows.Close()
	var out []records.Puppet
	for rows.Next() {
		r, _, err := scanPuppet(rows)
		if err != nil {
			return nil, fmt.Errorf("read puppets of %s user: %w", network, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read puppets of %s user: %w", network, err)
	}
	return out, nil
}

// CountPuppets returns the number of rows (puppet.Store).
func (s *Store) CountPuppets(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM puppets`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count puppets: %w", err)
	}
	return n, nil
}

// scanPuppet reads one row in puppetColumns order; ok is false for sql.ErrNoRows.
func scanPuppet(row interface{ Scan(...any) error }) (records.Puppet, bool, error) {
	var (
		r           records.Puppet
		first, last int64
	)
	err := row.Scan(&r.Network, &r.Account, &r.User, &r.ChatKey, &r.DisplayName, &first, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return records.Puppet{}, false, nil
	}
	if err != nil {
		return records.Puppet{}, false, err
	}
	r.FirstSeen, r.LastSeen = time.Unix(0, first), time.Unix(0, last)
	return r, true, nil
}
