package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/statusgate/statusgate/test/diskfull"
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
	g := newGateway(t, gatewayOptions{peers: []string{sp.ref.Enode()}, storeMaxBytes: maxBytes, apiUnlimited: true})
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

// TestE2E_diskFull is issue 15 finding 11 on a real full disk, through the bridge binary:
// its data dir (keys and SQLite database) on a 16 MiB tmpfs the test fills with a
// filler file while the gateway runs. What the disk refuses is not acknowledged: a POST
// gets no 202 and the log says "store full"; a POST waiting for the store when room
// returns (the filler removed, the gateway never restarted) is answered 202; the
// refused one, retried with its client id, is accepted; every accepted message reaches
// the reference Status node once per payload format, the ones accepted before the disk
// filled and the ones after alike. TestE2E_storeFull simulates the full disk with
// store.max_bytes and recovers through a restart.
func TestE2E_diskFull(t *testing.T) {
	t.Parallel()
	fs := diskfull.Mount(t, 16<<20)
	sp := startStatusPeer(t)
	g := newGateway(t, gatewayOptions{peers: []string{sp.ref.Enode()}, dataDir: filepath.Join(fs.Dir, "data")})
	g.start(t)
	g.waitReady(t)
	g.waitPeer(t, sp)

	filler := strings.Repeat("0123456789abcdef ", 200) // 3,400 bytes
	text := func(id string) string { return "[api] <Alice> " + id + " " + filler }
	post := func(id string, timeout time.Duration) (int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		raw, _ := json.Marshal(postBody{User: "alice", Name: "Alice", Text: id + " " + filler, ID: id})
		code, _, err := g.post(ctx, "status", g.token, raw)
		return code, err
	}
	delivered := func(ids ...string) func([]statusMsg) bool {
		return func(ms []statusMsg) bool {
			for _, id := range ids {
				if len(withText(ms, text(id))) < 2 {
					return false
				}
			}
			return true
		}
	}
	// Before: room on disk.
	accepted := []string{"before1", "before2"}
	for _, id := range accepted {
		if code, err := post(id, 30*time.Second); code != http.StatusAccepted {
			t.Fatalf("POST %s: %d (%v), want 202", id, code, err)
		}
	}
	sp.waitFor(t, msgTimeout, "the messages posted before the disk filled", delivered(accepted...))

	fs.Fill(t)
	var refused string
	for i := range 200 { // the database's files may hold some room of their own
		id := fmt.Sprintf("full%03d", i)
		code, err := post(id, 5*time.Second)
		if code == http.StatusAccepted {
			accepted = append(accepted, id)
			continue
		}
		if err == nil && code != http.StatusServiceUnavailable {
			t.Fatalf("POST %s on a full disk: %d, want 202, or 503 or no answer when the store is full", id, code)
		}
		refused = id
		t.Logf("disk full: %d accepted after filling, then POST %s answered %d (%v)", len(accepted)-2, id, code, err)
		break
	}
	if refused == "" {
		t.Fatalf("%d POSTs accepted on a full disk", len(accepted)-2)
	}
	if !g.poll(t, msgTimeout, func() bool { return strings.Contains(g.tail(logTail), "store full") }) {
		t.Fatalf("no \"store full\" error in the log:\n%s", g.tail(logTail))
	}
	// A POST that waits for the store while the disk is full.
	type answer struct {
		code int
		err  error
		at   time.Time
	}
	waiting := make(chan answer, 1)
	go func() {
		code, err := post("waiting", 40*time.Second)
		waiting <- answer{code, err, time.Now()}
	}()
	select {
	case a := <-waiting:
		t.Fatalf("POST on a full disk answered %d (%v) before room returned", a.code, a.err)
	case <-time.After(3 * time.Second): // it is not answered while the disk stays full
	}

	// Room returns, without a restart.
	freed := time.Now()
	fs.Free(t)
	a := <-waiting
	if a.code != http.StatusAccepted {
		t.Fatalf("the POST waiting on a full disk, once room returned: %d (%v), want 202", a.code, a.err)
	}
	t.Logf("the waiting POST answered 202 %v after room returned", a.at.Sub(freed).Round(time.Millisecond))
	if code, err := post(refused, 30*time.Second); code != http.StatusAccepted {
		t.Fatalf("POST %s (refused on the full disk) once room returned: %d (%v), want 202", refused, code, err)
	}
	if code, err := post("after", 30*time.Second); code != http.StatusAccepted {
		t.Fatalf("POST after room returned: %d (%v), want 202", code, err)
	}
	all := append(accepted, "waiting", refused, "after")
	got := sp.waitFor(t, msgTimeout, "every accepted message", delivered(all...))
	for _, id := range all {
		if n := len(withText(got, text(id))); n != 2 {
			t.Errorf("%s reached Status under %d message IDs, want 2 (one per payload format)", id, n)
		}
	}
	envelopes, repeats := sp.counts()
	t.Logf("%d messages, %d envelopes at the reference node (%d repeats of a message ID)", len(all), envelopes, repeats)
	g.stop(t) // still the first run: recovered without a restart
	if g.runs != 1 {
		t.Fatalf("%d runs, want 1", g.runs)
	}
	t.Logf("log while full:\n%s", grepLines(g.tail(400), "store full", 6))
}

// grepLines returns up to n lines of text holding substr.
func grepLines(text, substr string, n int) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) && len(out) < n {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
