package matrix

import (
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/bridges/bridgestest"
)

// TestConformance runs the bridges contract suite against a real Dendrite: a Matrix
// user in the portal room posts and reads the room, and an outage is Dendrite killed
// and resumed. The rig's own connector only sets the portal room up; the suite builds
// its own for the same registration.
func TestConformance(t *testing.T) {
	r := newRig(t)
	r.stop()
	bridgestest.TestConnector(t, bridgestest.Harness{
		New: func(t *testing.T) bridges.Connector {
			c, err := New(r.cfg)
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		Channel: "matrix:dev",
		Post: func(t *testing.T, text string) {
			if _, err := r.human.SendText(ctxT(t), r.room, text); err != nil {
				t.Fatal(err)
			}
		},
		Seen: func(t *testing.T, text string) []string {
			t.Helper()
			// Dendrite's client API learns of a new event asynchronously and pushes
			// nothing to a plain client: read the room again until it shows.
			for deadline := time.Now().Add(15 * time.Second); ; {
				resp, err := r.human.Messages(ctxT(t), r.room, "", "", mautrix.DirectionBackward, nil, 100)
				if err != nil {
					t.Fatal(err)
				}
				var seen []string
				found := false
				for i := len(resp.Chunk) - 1; i >= 0; i-- { // oldest first
					ev := resp.Chunk[i]
					if ev.Type != event.EventMessage {
						continue
					}
					_ = ev.Content.ParseRaw(ev.Type)
					body := ev.Content.AsMessage().Body
					seen = append(seen, body)
					found = found || strings.Contains(body, text)
				}
				if found {
					return seen
				}
				if time.Now().After(deadline) {
					t.Fatalf("the room does not show %q: %q", text, seen)
				}
				time.Sleep(20 * time.Millisecond)
			}
		},
		Outage: func(t *testing.T) func() {
			r.hs.Stop()
			return r.hs.Resume
		},
		Goroutines: []string{"github.com/statusgate/statusgate/bridges/matrix.", "maunium.net/go/mautrix"},
	})
}
