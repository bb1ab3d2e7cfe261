package api

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/bridges/bridgestest"
)

// TestConformance runs the bridges contract suite against the api connector's own HTTP
// server, with an HTTP client as the network's user: it POSTs (retrying a 503 with the
// same id, as a client should) and reads the channel's SSE stream. The api connector is
// the server, so it has no connection to lose: the outage check is skipped.
func TestConformance(t *testing.T) {
	var cur atomic.Pointer[Connector]
	url := func(t *testing.T) string {
		t.Helper()
		c := cur.Load()
		select {
		case <-c.Ready():
		case <-time.After(wait):
			t.Fatal("api connector not listening")
		}
		return "http://" + c.Addr().String()
	}
	bridgestest.TestConnector(t, bridgestest.Harness{
		New: func(t *testing.T) bridges.Connector {
			c, err := New(testConfig())
			if err != nil {
				t.Fatal(err)
			}
			cur.Store(c)
			return c
		},
		Channel: "api:status",
		Post: func(t *testing.T, text string) {
			id := make([]byte, 8)
			rand.Read(id)
			body, _ := json.Marshal(map[string]string{"id": hex.EncodeToString(id), "user": "alice", "text": text})
			r := &running{c: cur.Load(), url: url(t)}
			deadline := time.Now().Add(wait)
			for {
				resp := r.post(t, "status", string(body))
				if resp.status == http.StatusAccepted || resp.status == http.StatusOK {
					return
				}
				if resp.status != http.StatusServiceUnavailable || time.Now().After(deadline) {
					t.Fatalf("POST: %d %s", resp.status, resp.body)
				}
			}
		},
		Seen: func(t *testing.T, text string) []string {
			t.Helper()
			r := &running{c: cur.Load(), url: url(t)}
			s := r.openStream(t, "status", "", map[string]string{"Last-Event-ID": "0"}) // the whole ring
			defer s.resp.Body.Close()
			var seen []string
			for {
				ev := s.next(t)
				var m struct{ Text string }
				if err := json.Unmarshal([]byte(ev.data), &m); err != nil {
					t.Fatalf("SSE data %q: %v", ev.data, err)
				}
				seen = append(seen, m.Text)
				if strings.Contains(m.Text, text) {
					return seen
				}
			}
		},
		Goroutines: []string{"github.com/statusgate/statusgate/bridges/api."},
	})
}
