package main

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/statusgate/statusgate/test/slackfake"
)

// TestRun_slackRoute runs the whole gateway with a route bridging #status to a Slack
// channel (on test/slackfake: Slack cannot run here; the fake's doc says what it
// models) and to the api connector: an api POST is posted in Slack under the poster's
// name, and a Slack user's message reaches the api's SSE stream.
func TestRun_slackRoute(t *testing.T) {
	fake := slackfake.New(t, "C0STATUS")
	fake.AddUser("U0CAROL", "Carol")
	dir := filepath.Join(t.TempDir(), "data")
	admin, apiAddr := freeAddr(t), freeAddr(t)
	p := writeConfig(t, "data_dir: "+dir+`
node:
  listen_addr: 127.0.0.1:0
gateway:
  routes:
    - chat: status
      channels:
        - channel: api:status
        - channel: slack:C0STATUS
http:
  listen: `+admin+`
connectors:
  api:
    enabled: true
    listen: `+apiAddr+`
  slack:
    - bot_token: `+slackfake.BotToken+`
      app_token: `+slackfake.AppToken+`
      api_url: `+fake.APIURL()+`
      channels: [C0STATUS]
      rate_per_channel: 100
      burst: 100
`)
	r := startRoute(t, p, dir, admin, apiAddr, startupTimeout)
	events := r.events(t)
	r.post(t, `{"user":"alice","name":"Alice","text":"hello **Slack** <b>"}`)
	deadline := time.Now().Add(15 * time.Second)
	for {
		h := fake.History("C0STATUS")
		if len(h) > 0 {
			if h[len(h)-1].Username != "Alice" || h[len(h)-1].Text != "hello *Slack* &lt;b&gt;" {
				t.Fatalf("Slack got %+v", h[len(h)-1])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing reached Slack\n%s", r.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}

	fake.Post("C0STATUS", "U0CAROL", "hi from _Slack_", "")
	ev := r.nextEvent(t, events, 15*time.Second)
	if sender, _ := ev["sender"].(map[string]any); ev["text"] != "hi from *Slack*" || sender["name"] != "Carol" {
		t.Fatalf("SSE got %v", ev)
	}
	r.stop(t)
}

// TestRun_slackUnsignedRequestsCounted: requests to the Slack Events API endpoint
// without a valid signature are refused, counted in /metrics
// (statusgate_rejected_requests_total{network="slack"}) and not logged one by one
// (issue 15 finding 14).
func TestRun_slackUnsignedRequestsCounted(t *testing.T) {
	fake := slackfake.New(t, "C0STATUS")
	dir := filepath.Join(t.TempDir(), "data")
	admin, apiAddr, events := freeAddr(t), freeAddr(t), freeAddr(t)
	p := writeConfig(t, "data_dir: "+dir+`
node:
  listen_addr: 127.0.0.1:0
gateway:
  routes:
    - chat: status
      channels:
        - channel: api:status
        - channel: slack:C0STATUS
http:
  listen: `+admin+`
connectors:
  api:
    enabled: true
    listen: `+apiAddr+`
  slack:
    - bot_token: `+slackfake.BotToken+`
      transport: http
      signing_secret: `+slackfake.SigningSecret+`
      listen: `+events+`
      api_url: `+fake.APIURL()+`
      channels: [C0STATUS]
`)
	r := startRoute(t, p, dir, admin, apiAddr, startupTimeout)
	for range 20 {
		resp, err := http.Post("http://"+events+"/slack/events", "application/json", strings.NewReader(`{"type":"event_callback"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("unsigned request: %d, want 401", resp.StatusCode)
		}
	}
	_, body := httpGet(t, "http://"+admin+"/metrics")
	if want := `statusgate_rejected_requests_total{network="slack"} 20`; !strings.Contains(body, want) {
		t.Errorf("/metrics lacks %q", want)
	}
	if n := strings.Count(r.logs.String(), "slack events request refused"); n != 1 {
		t.Errorf("20 refused requests logged %d times, want 1", n)
	}
	r.stop(t)
}

// TestRun_slackEditsAndDeletesOnlyByAuthor (issue 15 finding 2, on the Slack fake:
// Slack cannot run here): events claiming another user changed or deleted Carol's
// bridged message never reach the api stream: a message_changed naming Mallory as the
// message's user (the gateway checks the author it stored), one whose edited.user is
// Mallory (the connector checks), a message_deleted whose previous message is
// Mallory's. Carol's own edit and delete do. Before the fix the forged edit reached the
// stream as the new text of Carol's message.
func TestRun_slackEditsAndDeletesOnlyByAuthor(t *testing.T) {
	fake := slackfake.New(t, "C0STATUS")
	fake.AddUser("U0CAROL", "Carol")
	fake.AddUser("U0MALLORY", "Mallory")
	dir := filepath.Join(t.TempDir(), "data")
	admin, apiAddr := freeAddr(t), freeAddr(t)
	p := writeConfig(t, "data_dir: "+dir+`
node:
  listen_addr: 127.0.0.1:0
gateway:
  routes:
    - chat: status
      channels:
        - channel: api:status
        - channel: slack:C0STATUS
http:
  listen: `+admin+`
connectors:
  api:
    enabled: true
    listen: `+apiAddr+`
  slack:
    - bot_token: `+slackfake.BotToken+`
      app_token: `+slackfake.AppToken+`
      api_url: `+fake.APIURL()+`
      channels: [C0STATUS]
`)
	r := startRoute(t, p, dir, admin, apiAddr, startupTimeout)
	events := r.events(t)
	ts, _ := fake.Post("C0STATUS", "U0CAROL", "I will pay you 5 EUR", "")
	orig := r.nextEvent(t, events, 15*time.Second)
	if orig["text"] != "I will pay you 5 EUR" {
		t.Fatalf("SSE got %v", orig)
	}
	changed := func(user, editor, text string) map[string]any {
		return map[string]any{
			"type": "message", "subtype": "message_changed", "channel": "C0STATUS", "hidden": true,
			"ts": ts + "1", "event_ts": ts + "1",
			"message":          map[string]any{"type": "message", "user": user, "text": text, "ts": ts, "edited": map[string]any{"user": editor, "ts": ts + "1"}},
			"previous_message": map[string]any{"type": "message", "user": "U0CAROL", "text": "I will pay you 5 EUR", "ts": ts},
		}
	}
	fake.Inject(changed("U0MALLORY", "U0MALLORY", "I will pay you 500 EUR"))
	fake.Inject(changed("U0CAROL", "U0MALLORY", "I will pay you 501 EUR"))
	fake.Inject(map[string]any{
		"type": "message", "subtype": "message_deleted", "channel": "C0STATUS", "hidden": true,
		"ts": ts + "2", "event_ts": ts + "2", "deleted_ts": ts,
		"previous_message": map[string]any{"type": "message", "user": "U0MALLORY", "text": "I will pay you 5 EUR", "ts": ts},
	})
	fake.Edit("C0STATUS", ts, "I will pay you 6 EUR")
	ev := r.nextEvent(t, events, 15*time.Second)
	if sender, _ := ev["sender"].(map[string]any); ev["kind"] != "edit" || ev["text"] != "I will pay you 6 EUR" || sender["name"] != "Carol" ||
		ev["target"] != orig["id"] {
		t.Fatalf("SSE got %v, want Carol's edit of %v", ev, orig["id"])
	}
	fake.Delete("C0STATUS", ts)
	if ev := r.nextEvent(t, events, 15*time.Second); ev["kind"] != "delete" || ev["target"] != orig["id"] {
		t.Fatalf("SSE got %v, want Carol's delete of %v", ev, orig["id"])
	}
	if _, metrics := httpGet(t, "http://"+admin+"/metrics"); !strings.Contains(metrics, `statusgate_events_dropped_total{reason="not_author"} 2`) {
		t.Errorf("/metrics does not count 2 not_author drops:\n%s", grepLines(metrics, "events_dropped"))
	}
	r.stop(t)
}
