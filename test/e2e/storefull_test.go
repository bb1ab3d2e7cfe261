package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestE2E_storeFull is the disk-full behaviour of issue 15 finding 11 through the bridge
// binary, on a database capped by store.max_bytes (SQLite answers SQLITE_FULL exactly as
// on a full disk): api POSTs are accepted until the store has no room; then a POST is
// not acknowledged (no 202), and the log says the store is full. The gateway pauses
// (it cannot record deliveries) and stops cleanly on SIGTERM. When room returns (the
// operator raises the cap and restarts), the unacknowledged message, retried with its
// client id, is accepted, and every accepted message reaches the reference Status node
// once per payload format: nothing acknowledged is lost, nothing is doubled.
func TestE2E_storeFull(t *testing.T) {
	t.Parallel()
	const maxBytes = 1 << 20
	sp := startStatusPeer(t)
	g := newGateway(t, gatewayOptions{peers: []string{sp.ref.Enode()}, storeMaxBytes: maxBytes})
	g.start(t)
	g.waitReady(t)
	g.waitPeer(t, sp)

	filler := strings.Repeat("0123456789abcdef ", 200) // 3,400 bytes: one Status message
	post := func(id string, timeout time.Duration) (int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		raw, _ := json.Marshal(postBody{User: "alice", Name: "Alice", Text: id + " " + filler, ID: id})
		code, _, err := g.post(ctx, "status", g.token, raw)
		return code, err
	}
	var accepted []string
	var refused string
	for i := range 1000 {
		id := fmt.Sprintf("m%04d", i)
		code, err := post(id, 5*time.Second)
		if code == http.StatusAccepted {
			accepted = append(accepted, id)
			continue
		}
		if err == nil && code != http.StatusServiceUnavailable {
			t.Fatalf("POST %s: %d, want 202, or 503 or no answer when full", id, code)
		}
		refused = id
		t.Logf("store full after %d accepted messages: POST %s answered %d (%v)", len(accepted), id, code, err)
		break
	}
	if refused == "" || len(accepted) == 0 {
		t.Fatalf("%d accepted, none refused: the cap was never reached", len(accepted))
	}
	if !g.poll(t, msgTimeout, func() bool { return strings.Contains(g.tail(logTail), "store full") }) {
		t.Errorf("no \"store full\" error in the log:\n%s", g.tail(logTail))
	}
	// With no room to record deliveries the gateway pauses instead of delivering what
	// it could not record; it stops cleanly (g.stop: SIGTERM, exit 0 within 30 s).
	atStop, _ := sp.counts()
	stopAt := time.Now()
	g.stop(t)
	t.Logf("stopped on a full store in %v", time.Since(stopAt).Round(100*time.Millisecond))

	// Room returns: the operator raises the cap. The refused message, retried with its
	// id, is accepted and delivered; nothing accepted before is delivered twice.
	cfg, err := os.ReadFile(g.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	raised := strings.Replace(string(cfg), "max_bytes: "+strconv.Itoa(maxBytes), "max_bytes: "+strconv.Itoa(64*maxBytes), 1)
	writeFile(t, g.cfgPath, raised)
	g.start(t)
	g.waitReady(t)
	g.waitPeer(t, sp)
	if code, err := post(refused, 30*time.Second); code != http.StatusAccepted {
		t.Fatalf("POST %s after room returned: %d (%v), want 202", refused, code, err)
	}
	// Every accepted message, and the refused one, reaches Status in both payload
	// formats, each once.
	text := func(id string) string { return "[api] <Alice> " + id + " " + filler }
	all := append(accepted, refused)
	got := sp.waitFor(t, msgTimeout, "every accepted message and the refused one", func(ms []statusMsg) bool {
		for _, id := range all {
			if len(withText(ms, text(id))) < 2 {
				return false
			}
		}
		return true
	})
	for _, id := range all {
		if n := len(withText(got, text(id))); n != 2 {
			t.Errorf("%s reached Status under %d message IDs, want 2 (one per payload format)", id, n)
		}
	}
	envelopes, repeats := sp.counts()
	t.Logf("%d envelopes reached the reference node before the stop, %d after the restart (%d repeats of a message ID, dropped as Status clients do)",
		atStop, envelopes-atStop, repeats)
}
