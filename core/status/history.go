package status

import (
	"context"
	"fmt"
	"time"

	"github.com/statusgate/statusgate/core/mailserver"
	"github.com/statusgate/statusgate/core/whisper"
)

// SyncStore keeps each chat's progress; see mailserver.SyncStore (package store
// implements it on SQLite and PostgreSQL).
type SyncStore = mailserver.SyncStore

// HistoryProgress is reported while a chat catches up.
type HistoryProgress struct {
	Chat      string
	Envelopes uint64    // delivered by the mailserver so far in this catch-up
	Covered   time.Time // history before this time is in
	To        time.Time // the catch-up's end
	Done      bool
}

// HistoryConfig turns on catch-up from mailservers.
type HistoryConfig struct {
	// Client requests history; see mailserver.NewClient. Required for SyncHistory.
	Client *mailserver.Client
	// Store keeps each chat's progress. Default: in memory.
	Store SyncStore
	// Window is how far back a chat never synced before is fetched. Default 24 h.
	Window time.Duration
}

// SyncHistory fetches the chat's history from the mailserver peer p, from where the last
// sync stopped (or Window ago) until now, resuming an interrupted range from its cursor.
// The messages arrive on Messages like live ones, each once. progress, if not nil, is
// called after every page.
func (ch *Chat) SyncHistory(ctx context.Context, p *whisper.Peer, progress func(HistoryProgress)) error {
	h := ch.c.cfg.History
	if h.Client == nil {
		return fmt.Errorf("sync history of %q: no mailserver client configured", ch.name)
	}
	store := h.Store
	if store == nil {
		store = ch.c.memSync
	}
	st, ok, err := store.LoadSync(ctx, ch.name)
	if err != nil {
		return fmt.Errorf("sync history of %q: %w", ch.name, err)
	}
	now := ch.c.cfg.Clock()
	req := mailserver.History{Topics: []whisper.Topic{ch.topic}, From: now.Add(-h.Window), To: now}
	if ok {
		req.From = st.Covered
		if len(st.Cursor) > 0 && !st.To.IsZero() {
			req.Cursor, req.To = st.Cursor, st.To
		}
	}
	report := func(pr mailserver.Progress) {
		next := mailserver.SyncState{Covered: pr.Covered, Cursor: pr.Cursor}
		if len(pr.Cursor) > 0 {
			next.To = req.To
		}
		if err := store.SaveSync(ctx, ch.name, next); err != nil {
			ch.c.log.Warn("status history progress not saved", "chat", ch.name, "err", err)
		}
		if progress != nil {
			progress(HistoryProgress{Chat: ch.name, Envelopes: pr.Envelopes, Covered: pr.Covered, To: req.To, Done: pr.Done})
		}
	}
	pr, err := h.Client.Request(ctx, p, req, report)
	if err != nil {
		return fmt.Errorf("sync history of %q: %w", ch.name, err)
	}
	report(pr)
	if req.To.Before(now) {
		// That finished a range interrupted in an earlier run; now fetch the rest, up to
		// now. (The next call starts at req.To, so this recurses once.)
		return ch.SyncHistory(ctx, p, progress)
	}
	return nil
}
