package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/statusgate/statusgate/store"
)

// Defaults of the ledger's retention and size cap (gateway.ledger_retention_days,
// gateway.ledger_max_bytes).
const (
	defaultLedgerRetentionDays = 30
	defaultLedgerMaxBytes      = 256 << 20
	ledgerPruneEvery           = 10 * time.Minute
)

// ledgerRetention keeps the gateway ledger bounded (issue 15 finding 11): at start and
// every ledgerPruneEvery it deletes completed deliveries and unreferenced events older
// than keep, and the oldest completed events past maxBytes (store.PruneLedger). A
// failure is logged and tried again at the next tick: pruning is never urgent, and a
// full store is exactly when it frees room.
type ledgerRetention struct {
	st       *store.Store
	keep     time.Duration // 0: for ever
	maxBytes int64         // 0: no cap
	every    time.Duration
	now      func() time.Time
	log      *slog.Logger
}

// newLedgerRetention builds the pruner of cfg's gateway section.
func newLedgerRetention(cfg *Config, st *store.Store, log *slog.Logger) ledgerRetention {
	r := ledgerRetention{st: st, every: ledgerPruneEvery, now: time.Now, log: log}
	if d := cfg.Gateway.LedgerRetentionDays; d > 0 {
		r.keep = time.Duration(d) * 24 * time.Hour
	}
	if b := cfg.Gateway.LedgerMaxBytes; b > 0 {
		r.maxBytes = b
	}
	return r
}

// enabled reports whether there is anything to prune by.
func (r ledgerRetention) enabled() bool { return r.keep > 0 || r.maxBytes > 0 }

// Run prunes until ctx ends.
func (r ledgerRetention) Run(ctx context.Context) error {
	tick := time.NewTicker(r.every)
	defer tick.Stop()
	for {
		r.prune(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func (r ledgerRetention) prune(ctx context.Context) {
	var before time.Time // zero: nothing is old enough
	if r.keep > 0 {
		before = r.now().Add(-r.keep)
	}
	p, err := r.st.PruneLedger(ctx, before, r.maxBytes)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("ledger pruning failed; trying again later", "err", err, "in", r.every)
		}
		return
	}
	if p.Entries > 0 || p.Events > 0 {
		r.log.Info("ledger pruned", "entries", p.Entries, "events", p.Events, "retention", r.keep, "max_bytes", r.maxBytes)
	}
}
