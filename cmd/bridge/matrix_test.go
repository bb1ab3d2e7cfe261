package main

import (
	"bytes"
	"context"
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

// TestRun_matrixRoute: `bridge generate-registration` writes the registration a real
// Dendrite loads; the whole gateway then bridges api:status and the Matrix portal room
// both ways (an api POST appears from a ghost named after the poster; a Matrix user's
// message reaches the SSE stream).
func TestRun_matrixRoute(t *testing.T) {
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

	r := startRoute(t, p, data, admin, apiAddr, 60*time.Second)
	ctx := r.ctx
	// The portal room is #status_status:localhost; the human joins it.
	resolved, err := human.ResolveAlias(ctx, id.RoomAlias("#status_status:localhost"))
	if err != nil {
		t.Fatalf("portal alias: %v", err)
	}
	room := resolved.RoomID
	if _, err := human.JoinRoomByID(ctx, room); err != nil {
		t.Fatal(err)
	}

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
