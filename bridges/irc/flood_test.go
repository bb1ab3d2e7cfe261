package irc

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/test/ircd"
)

// TestSend_floodPenalties runs the connector's default FloodRate and FloodBurst
// against ngircd with its flood penalties on: a burst of Sends all arrive, in order,
// and the server does not disconnect the bridge for flooding. The barrier paces Send
// to what the server has read, so its penalties slow the burst but never overflow it.
func TestSend_floodPenalties(t *testing.T) {
	srv := ircd.Start(t, ircd.Options{Flood: true})
	hum := startHuman(t, srv, "human")
	cfg := testConfig(srv)
	cfg.FloodRate, cfg.FloodBurst = 0, 0 // the defaults
	c, h := startConnector(t, cfg)
	reported := len(h.States())
	const n = 12 // 5 at once, then 2 a second: about 4 s, plus 2 s of join penalties
	start := time.Now()
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		_, err := c.Send(ctx, outbound(t, c, bridges.KindMessage, "alice", "m"+strconv.Itoa(i), i))
		cancel()
		if err != nil {
			t.Fatalf("send %d after %s: %v", i, time.Since(start), err)
		}
	}
	for i, l := range hum.next(t, n) {
		if l.text != "<alice> m"+strconv.Itoa(i) {
			t.Fatalf("line %d: %q", i, l.text)
		}
	}
	if st := h.States(); len(st) > reported {
		t.Fatalf("state %s during the burst: disconnected for flooding?", st[reported].State)
	}
	t.Logf("%d messages in %s", n, time.Since(start))
}
