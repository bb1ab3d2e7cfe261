package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
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
	var out bytes.Buffer
	if code := run(context.Background(), []string{"init", "-keys", "-config", p}, nil, &out, &out); code != exitOK {
		t.Fatalf("init -keys: %d\n%s", code, out.String())
	}
	logs := newLogWatch("gateway running")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	go func() { code <- run(ctx, []string{"run", "-config", p}, nil, &bytes.Buffer{}, logs) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, body := httpGet(t, "http://"+admin+"/readyz")
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz: %d %s\n%s", status, body, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	token, err := os.ReadFile(filepath.Join(dir, "api.token"))
	if err != nil {
		t.Fatal(err)
	}
	auth := "Bearer " + strings.TrimSpace(string(token))
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+apiAddr+"/v1/channels/status/events", nil)
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := make(chan map[string]any, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var ev map[string]any
				if json.Unmarshal([]byte(data), &ev) == nil {
					events <- ev
				}
			}
		}
	}()

	post, _ := http.NewRequest(http.MethodPost, "http://"+apiAddr+"/v1/channels/status/messages",
		strings.NewReader(`{"user":"alice","name":"Alice","text":"hello **Slack** <b>"}`))
	post.Header.Set("Authorization", auth)
	pr, err := http.DefaultClient.Do(post)
	if err != nil {
		t.Fatal(err)
	}
	pr.Body.Close()
	if pr.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %d", pr.StatusCode)
	}
	deadline = time.Now().Add(15 * time.Second)
	for {
		h := fake.History("C0STATUS")
		if len(h) > 0 {
			if h[len(h)-1].Username != "Alice" || h[len(h)-1].Text != "hello *Slack* &lt;b&gt;" {
				t.Fatalf("Slack got %+v", h[len(h)-1])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing reached Slack\n%s", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}

	fake.Post("C0STATUS", "U0CAROL", "hi from _Slack_", "")
	select {
	case ev := <-events:
		sender, _ := ev["sender"].(map[string]any)
		if ev["text"] != "hi from *Slack*" || sender["name"] != "Carol" {
			t.Fatalf("SSE got %v", ev)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("nothing reached the SSE stream\n%s", logs)
	}
	cancel()
	select {
	case c := <-code:
		if c != exitOK {
			t.Errorf("run: exit %d:\n%s", c, logs)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return within 15 s of cancel")
	}
}
