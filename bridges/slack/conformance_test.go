package slack

import (
	"strings"
	"testing"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/bridges/bridgestest"
	"github.com/statusgate/statusgate/test/slackfake"
)

// TestConformance runs the bridges contract suite against test/slackfake (Slack cannot
// run here; the fake's doc says what it models), over Socket Mode: a workspace user
// posts through the fake, what the bot posted is the channel's history, and an outage
// is the fake answering 503 and closing the websockets.
func TestConformance(t *testing.T) {
	fake := newFake(t)
	bridgestest.TestConnector(t, bridgestest.Harness{
		New: func(t *testing.T) bridges.Connector {
			c, err := New(testConfig(fake))
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		Channel: "slack:" + chGeneral,
		Post:    func(t *testing.T, text string) { fake.Post(chGeneral, "U0ALICE", text, "") },
		Seen: func(t *testing.T, text string) []string {
			t.Helper()
			var seen []string
			fake.WaitHistory(chGeneral, func(h []slackfake.Message) bool {
				seen = seen[:0]
				found := false
				for _, m := range h {
					seen = append(seen, m.Text)
					found = found || strings.Contains(m.Text, text)
				}
				return found
			}, wait)
			return seen
		},
		Outage: func(t *testing.T) func() {
			fake.SetDown(true)
			return func() { fake.SetDown(false) }
		},
		Goroutines: []string{"github.com/statusgate/statusgate/bridges/slack.", "github.com/slack-go/slack"},
	})
}
