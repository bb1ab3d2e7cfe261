package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/statusgate/statusgate/test/homeserver"
)

// matrixRoute is `bridge run` bridging api:status and the Matrix portal room of #status
// on a real Dendrite that loaded the registration `bridge generate-registration` wrote.
type matrixRoute struct {
	*routeRun
	hs      *homeserver.Server
	human   *mautrix.Client // @alice:localhost, joined to the portal room
	room    id.RoomID
	asAddr  string // the appservice listener
	asToken string
	hsToken string
}

// startMatrixRoute sets up and starts a matrixRoute.
func startMatrixRoute(t *testing.T) *matrixRoute {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	admin, apiAddr, asAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	cfgText := func(hsURL, tokens string) string {
		return "data_dir: " + data + `
node:
  listen_addr: 127.0.0.1:0
gateway:
  routes:
    - chat: status
      channels:
        - channel: api:status
        - channel: matrix:status
http:
  listen: ` + admin + `
connectors:
  api:
    enabled: true
    listen: ` + apiAddr + `
  matrix:
    - homeserver_url: ` + hsURL + `
      server_name: localhost
      listen: ` + asAddr + tokens + `
`
	}
	p := writeConfig(t, cfgText("http://127.0.0.1:1", ""))
	reg := filepath.Join(dir, "registration.yaml")
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"generate-registration", "-config", p, "-out", reg}, nil, &out, &errOut); code != exitOK {
		t.Fatalf("generate-registration: %d\n%s%s", code, out.String(), errOut.String())
	}
	toks := regexp.MustCompile(`as_token: ([0-9a-f]+)\s+hs_token: ([0-9a-f]+)`).FindStringSubmatch(out.String())
	if toks == nil {
		t.Fatalf("no tokens printed:\n%s", out.String())
	}
	if st, err := os.Stat(reg); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("registration file: %v %v", st, err)
	}
	if code := run(context.Background(), []string{"generate-registration", "-config", p, "-out", reg}, nil, &out, &errOut); code == exitOK {
		t.Fatal("an existing registration was overwritten without -force")
	}
	regYAML, err := os.ReadFile(reg)
	if err != nil {
		t.Fatal(err)
	}
	hs := homeserver.Start(t, homeserver.Options{Registrations: [][]byte{regYAML}})
	writeFileMode(t, p, cfgText(hs.URL(), "\n      as_token: "+toks[1]+"\n      hs_token: "+toks[2]))
	human := hs.RegisterUser(t, "alice")

	r := startRoute(t, p, data, admin, apiAddr, startupTimeout)
	// The portal room is #status_status:localhost; the human joins it.
	resolved, err := human.ResolveAlias(r.ctx, id.RoomAlias("#status_status:localhost"))
	if err != nil {
		t.Fatalf("portal alias: %v", err)
	}
	if _, err := human.JoinRoomByID(r.ctx, resolved.RoomID); err != nil {
		t.Fatal(err)
	}
	return &matrixRoute{routeRun: r, hs: hs, human: human, room: resolved.RoomID, asAddr: asAddr, asToken: toks[1], hsToken: toks[2]}
}

// TestRun_matrixRoute: `bridge generate-registration` writes the registration a real
// Dendrite loads; the whole gateway then bridges api:status and the Matrix portal room
// both ways (an api POST appears from a ghost named after the poster; a Matrix user's
// message reaches the SSE stream).
func TestRun_matrixRoute(t *testing.T) {
	m := startMatrixRoute(t)
	r, human, room, ctx := m.routeRun, m.human, m.room, m.ctx
	events := r.events(t)
	r.post(t, `{"user":"bob","name":"Bob","text":"hello **Matrix** <script>x</script>"}`)
	var got *event.Event
	deadline := time.Now().Add(30 * time.Second)
	for got == nil && time.Now().Before(deadline) {
		msgs, err := human.Messages(ctx, room, "", "", mautrix.DirectionBackward, nil, 50)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range msgs.Chunk {
			if ev.Type == event.EventMessage && strings.HasPrefix(ev.Sender.Localpart(), "status_") {
				_ = ev.Content.ParseRaw(ev.Type)
				if c := ev.Content.AsMessage(); strings.Contains(c.Body, "hello") {
					got = ev
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got == nil {
		t.Fatalf("nothing reached the portal room\n%s", r.logs)
	}
	c := got.Content.AsMessage()
	if !strings.Contains(c.FormattedBody, "<strong>Matrix</strong>") || strings.Contains(c.FormattedBody, "<script>") {
		t.Errorf("portal message body %q formatted %q", c.Body, c.FormattedBody)
	}
	name, err := human.GetDisplayName(ctx, got.Sender)
	if err != nil || name.DisplayName != "Bob" {
		t.Errorf("ghost %s display name %+v %v, want Bob", got.Sender, name, err)
	}

	if _, err := human.SendText(ctx, room, "hi from Matrix"); err != nil {
		t.Fatal(err)
	}
	if ev := r.nextEvent(t, events, 30*time.Second); ev["text"] != "hi from Matrix" {
		t.Fatalf("SSE got %v", ev)
	}
	r.stop(t)
}

func writeFileMode(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRun_matrixEditsAndRedactionsOnlyByAuthor (issue 15 finding 2): on a real Dendrite,
// Mallory edits Alice's bridged message to read "I will pay you 500 EUR"; the whole
// gateway relays only Alice's own edit to the api stream. Mallory's redaction of it is
// dropped; a moderator's (power level 50, the room's redact level) goes through, and
// the log says who deleted whose message. Before the fix Mallory's edit reached the
// stream (and from there every other network) as the new text of Alice's message.
func TestRun_matrixEditsAndRedactionsOnlyByAuthor(t *testing.T) {
	m := startMatrixRoute(t)
	ctx := m.ctx
	events := m.events(t)
	mallory, mod := m.hs.RegisterUser(t, "mallory"), m.hs.RegisterUser(t, "moderator")
	for _, c := range []*mautrix.Client{mallory, mod} {
		if _, err := c.JoinRoomByID(ctx, m.room); err != nil {
			t.Fatal(err)
		}
	}
	// The bot made the portal room; with its token the test raises the moderator.
	bot, err := mautrix.NewClient(m.hs.URL(), homeserver.UserID("statusbot"), m.asToken)
	if err != nil {
		t.Fatal(err)
	}
	var pl event.PowerLevelsEventContent
	if err := bot.StateEvent(ctx, m.room, event.StatePowerLevels, "", &pl); err != nil {
		t.Fatal(err)
	}
	pl.SetUserLevel(homeserver.UserID("moderator"), pl.Redact())
	if _, err := bot.SendStateEvent(ctx, m.room, event.StatePowerLevels, "", &pl); err != nil {
		t.Fatal(err)
	}

	sent, err := m.human.SendText(ctx, m.room, "I will pay you 5 EUR")
	if err != nil {
		t.Fatal(err)
	}
	orig := m.nextEvent(t, events, 30*time.Second)
	if orig["text"] != "I will pay you 5 EUR" {
		t.Fatalf("SSE got %v", orig)
	}
	replace := func(c *mautrix.Client, text string) {
		t.Helper()
		if _, err := c.SendMessageEvent(ctx, m.room, event.EventMessage, &event.MessageEventContent{
			MsgType: event.MsgText, Body: "* " + text, NewContent: &event.MessageEventContent{MsgType: event.MsgText, Body: text},
			RelatesTo: &event.RelatesTo{Type: event.RelReplace, EventID: sent.EventID},
		}); err != nil {
			t.Fatal(err)
		}
	}
	replace(mallory, "I will pay you 500 EUR")
	replace(m.human, "I will pay you 6 EUR")
	// Transactions reach the bridge in order: the next event is Alice's edit, or
	// Mallory's got through.
	ev := m.nextEvent(t, events, 30*time.Second)
	if sender, _ := ev["sender"].(map[string]any); ev["kind"] != "edit" || ev["text"] != "I will pay you 6 EUR" ||
		sender["id"] != "matrix:"+string(homeserver.UserID("alice")) || ev["target"] != orig["id"] {
		t.Fatalf("SSE got %v, want alice's edit of %v", ev, orig["id"])
	}

	// Dendrite v0.15.2 does not push redactions to application services: they enter as
	// the transactions a homeserver that does would send, with the hs_token.
	redact := func(txn string, who id.UserID) {
		t.Helper()
		body := fmt.Sprintf(`{"events":[{"type":"m.room.redaction","event_id":"$%s","room_id":%q,"sender":%q,"redacts":%q,"origin_server_ts":%d,"content":{"redacts":%q}}]}`,
			txn, m.room, who, sent.EventID, time.Now().UnixMilli(), sent.EventID)
		req, _ := http.NewRequest(http.MethodPut, "http://"+m.asAddr+"/_matrix/app/v1/transactions/"+txn, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+m.hsToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("transaction %s: %s", txn, resp.Status)
		}
	}
	redact("mallory-redaction", homeserver.UserID("mallory"))
	redact("moderator-redaction", homeserver.UserID("moderator"))
	ev = m.nextEvent(t, events, 30*time.Second)
	if sender, _ := ev["sender"].(map[string]any); ev["kind"] != "delete" || sender["id"] != "matrix:"+string(homeserver.UserID("moderator")) ||
		ev["target"] != orig["id"] {
		t.Fatalf("SSE got %v, want the moderator's delete of %v", ev, orig["id"])
	}
	if !strings.Contains(m.logs.String(), "moderator deleted another's message") {
		t.Error("the moderator's delete was not audited in the log")
	}
	_, metrics := httpGet(t, "http://"+m.admin+"/metrics")
	if !strings.Contains(metrics, `statusgate_events_dropped_total{reason="not_author"} 2`) {
		t.Errorf("/metrics does not count 2 not_author drops:\n%s", grepLines(metrics, "events_dropped"))
	}
	m.stop(t)
}

// grepLines returns the lines of s containing sub.
func grepLines(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
