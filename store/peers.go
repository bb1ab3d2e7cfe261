package store

import (
	"context"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/statusgate/statusgate/core/peers"
)

var _ peers.Cache = (*Store)(nil)

// peerCacheLimit bounds the cached peers of one topic; the oldest go first.
const peerCacheLimit = 64

// AddPeer caches node (an enode URL) as a good peer of topic, or refreshes it
// (peers.Cache).
func (s *Store) AddPeer(ctx context.Context, topic, node string) error {
	n, err := enode.ParseV4(node)
	if err != nil {
		return fmt.Errorf("cache peer: %w", err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cache peer: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO peer_cache (topic, node_id, enode, added_at) VALUES (?, ?, ?, ?)
ON CONFLICT (topic, node_id) DO UPDATE SET enode = excluded.enode, added_at = excluded.added_at`),
		topic, n.ID().String(), n.URLv4(), s.peerStamp(time.Now())); err != nil {
		return fmt.Errorf("cache peer: %w", full(err))
	}
	if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM peer_cache WHERE topic = ? AND node_id NOT IN
(SELECT node_id FROM peer_cache WHERE topic = ? ORDER BY added_at DESC, node_id LIMIT ?)`), topic, topic, peerCacheLimit); err != nil {
		return fmt.Errorf("cache peer: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cache peer: %w", full(err))
	}
	return nil
}

// peerStamp returns now in nanoseconds, above every stamp this Store gave before:
// the cache is ordered by it, and a wall clock stepped back (NTP) must not make a
// peer cached later look older.
func (s *Store) peerStamp(now time.Time) int64 {
	for {
		last := s.lastPeerStamp.Load()
		v := max(now.UnixNano(), last+1)
		if s.lastPeerStamp.CompareAndSwap(last, v) {
			return v
		}
	}
}

// RemovePeer forgets a cached peer of topic (peers.Cache).
func (s *Store) RemovePeer(ctx context.Context, topic string, id enode.ID) error {
	if _, err := s.db.ExecContext(ctx, s.d.rebind(`DELETE FROM peer_cache WHERE topic = ? AND node_id = ?`), topic, id.String()); err != nil {
		return fmt.Errorf("uncache peer: %w", err)
	}
	return nil
}

// Peers returns up to limit cached peers of topic, newest first (peers.Cache).
func (s *Store) Peers(ctx context.Context, topic string, limit int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, s.d.rebind(`SELECT enode FROM peer_cache WHERE topic = ? ORDER BY added_at DESC, node_id LIMIT ?`), topic, limit)
	if err != nil {
		return nil, fmt.Errorf("read peer cache: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, fmt.Errorf("read peer cache: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}
