package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/statusgate/statusgate/records"
	"github.com/statusgate/statusgate/store"
)

// TestLedgerRetention_configured: the gateway section's ledger_retention_days and
// ledger_max_bytes reach the pruner bridge run starts: old completed events go, the
// newest fit the cap, a pending one stays.
func TestLedgerRetention_configured(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{Path: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	for n := range 40 {
		received := now.Add(-time.Duration(40-n) * 24 * time.Hour) // one a day, the last yesterday
		ev := records.Event{Network: "api", Channel: "api:c", MsgID: fmt.Sprintf("api:m%d", n), Kind: "message",
			Body: bytes.Repeat([]byte("z"), 64<<10), Received: received}
		if _, _, err := st.IngestEvent(ctx, ev, []records.Dest{{Dest: "status:c", Key: ev.MsgID}}); err != nil {
			t.Fatal(err)
		}
		es, err := st.PendingEntries(ctx, "status:c", 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if n == 35 {
			continue // stays pending
		}
		if err := st.MarkDelivered(ctx, es[len(es)-1].ID, nil, received); err != nil {
			t.Fatal(err)
		}
	}
	cfg := &Config{Gateway: GatewayConfig{LedgerRetentionDays: 30, LedgerMaxBytes: 1 << 20}}
	r := newLedgerRetention(cfg, st, slog.New(slog.DiscardHandler))
	if !r.enabled() {
		t.Fatal("retention not enabled")
	}
	r.prune(ctx)
	size, err := st.LedgerBytes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// 1 MiB holds the 16 newest events of 64 KiB; the pending one is among them.
	if size != 16*64<<10 {
		t.Errorf("ledger holds %d KiB after pruning, want %d KiB", size>>10, 16*64)
	}
	if n, _ := st.CountPending(ctx, "status:c"); n != 1 {
		t.Errorf("%d pending, want 1", n)
	}
	off := newLedgerRetention(&Config{Gateway: GatewayConfig{LedgerRetentionDays: -1, LedgerMaxBytes: -1}}, st, nil)
	if off.enabled() {
		t.Error("retention -1 and max bytes -1 still prune")
	}
}
