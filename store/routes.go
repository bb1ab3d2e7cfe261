package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/statusgate/statusgate/records"
)

// The route table (gateway.RouteStore): gateway_routes and gateway_route_channels, in
// migration 0012_routes.sql. A route and its channels are written in one transaction;
// a channel's primary key keeps it in one route.

// Routes returns every route, by chat, each with its channels in their order.
func (s *Store) Routes(ctx context.Context) ([]records.Route, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT r.chat, r.kind, r.long_text, r.source, c.channel, c.direction
FROM gateway_routes r LEFT JOIN gateway_route_channels c ON c.chat = r.chat
ORDER BY r.chat, c.position`)
	if err != nil {
		return nil, fmt.Errorf("read routes: %w", err)
	}
	defer rows.Close()
	var out []records.Route
	for rows.Next() {
		var r records.Route
		var ch, dir sql.NullString
		if err := rows.Scan(&r.Chat, &r.Kind, &r.LongText, &r.Source, &ch, &dir); err != nil {
			return nil, fmt.Errorf("read routes: %w", err)
		}
		if n := len(out); n == 0 || out[n-1].Chat != r.Chat {
			out = append(out, r)
		}
		if ch.Valid {
			last := &out[len(out)-1]
			last.Channels = append(last.Channels, records.RouteChannel{Channel: ch.String, Direction: dir.String})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read routes: %w", err)
	}
	return out, nil
}

// AddRoute adds r. It fails with records.ErrRouteExists when r.Chat has a route, and
// with records.ErrChannelTaken when one of r's channels is in another; then nothing is
// written.
func (s *Store) AddRoute(ctx context.Context, r records.Route) error {
	return s.putRoute(ctx, r, false)
}

// ReplaceRoute writes r in place of r.Chat's route, if any (its channels are replaced).
// It fails with records.ErrChannelTaken when one of r's channels is in another route;
// then nothing is written.
func (s *Store) ReplaceRoute(ctx context.Context, r records.Route) error {
	return s.putRoute(ctx, r, true)
}

func (s *Store) putRoute(ctx context.Context, r records.Route, replace bool) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("write route %s: begin: %w", r.Chat, err)
	}
	defer tx.Rollback() // no-op after Commit
	var n int
	if err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT COUNT(*) FROM gateway_routes WHERE chat = ?`), r.Chat).Scan(&n); err != nil {
		return fmt.Errorf("write route %s: %w", r.Chat, err)
	}
	if n > 0 && !replace {
		return fmt.Errorf("add route %s: %w", r.Chat, records.ErrRouteExists)
	}
	for _, ch := range r.Channels {
		var owner string
		err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT chat FROM gateway_route_channels WHERE channel = ?`), ch.Channel).Scan(&owner)
		if err == nil && owner != r.Chat {
			return fmt.Errorf("write route %s: channel %s is in route %s: %w", r.Chat, ch.Channel, owner, records.ErrChannelTaken)
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("write route %s: %w", r.Chat, err)
		}
	}
	if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM gateway_route_channels WHERE chat = ?`), r.Chat); err != nil {
		return fmt.Errorf("write route %s: %w", r.Chat, full(err))
	}
	if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM gateway_routes WHERE chat = ?`), r.Chat); err != nil {
		return fmt.Errorf("write route %s: %w", r.Chat, full(err))
	}
	if _, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO gateway_routes (chat, kind, long_text, source) VALUES (?, ?, ?, ?)`),
		r.Chat, r.Kind, r.LongText, r.Source); err != nil {
		return fmt.Errorf("write route %s: %w", r.Chat, full(err))
	}
	for i, ch := range r.Channels {
		if _, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO gateway_route_channels (channel, chat, direction, position) VALUES (?, ?, ?, ?)`),
			ch.Channel, r.Chat, ch.Direction, i); err != nil {
			return fmt.Errorf("write route %s: channel %s: %w", r.Chat, ch.Channel, full(err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("write route %s: commit: %w", r.Chat, full(err))
	}
	return nil
}

// DeleteRoute removes chat's route and its channels. It fails with records.ErrNoRoute
// when there is none.
func (s *Store) DeleteRoute(ctx context.Context, chat string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete route %s: begin: %w", chat, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM gateway_route_channels WHERE chat = ?`), chat); err != nil {
		return fmt.Errorf("delete route %s: %w", chat, full(err))
	}
	res, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM gateway_routes WHERE chat = ?`), chat)
	if err != nil {
		return fmt.Errorf("delete route %s: %w", chat, full(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delete route %s: %w", chat, records.ErrNoRoute)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete route %s: commit: %w", chat, full(err))
	}
	return nil
}
