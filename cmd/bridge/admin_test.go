package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/statusgate/statusgate/test/freeport"
)

// freeAddr returns a loopback address reserved for this test process.
func freeAddr(t *testing.T) string { return freeport.Addr(t) }

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRun_gatewayAdminEndpoints runs the whole gateway (node, mailserver, gateway, api
// connector, admin server) and checks /healthz, /readyz and /metrics, a message posted
// through the api connector in the metrics, no secret in the logs, and a clean stop.
func TestRun_gatewayAdminEndpoints(t *testing.T) {
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
http:
  listen: `+admin+`
connectors:
  api:
    enabled: true
    listen: `+apiAddr+`
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
	select {
	case <-logs.seen:
	case c := <-code:
		t.Fatalf("run exited with %d:\n%s", c, logs)
	case <-time.After(startupTimeout):
		t.Fatalf("gateway not running within %v:\n%s", startupTimeout, logs)
	}

	var ready readiness
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, body := httpGet(t, "http://"+admin+"/readyz")
		if status == http.StatusOK {
			if err := json.Unmarshal([]byte(body), &ready); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz: %d %s", status, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !ready.Ready || !ready.Gateway || ready.Connectors["api"].State != "connected" {
		t.Fatalf("/readyz: %+v", ready)
	}
	if _, ok := ready.Queues["status:status"]; !ok {
		t.Errorf("/readyz lists no queue for the Status chat: %+v", ready.Queues)
	}
	if status, body := httpGet(t, "http://"+admin+"/healthz"); status != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz: %d %q", status, body)
	}

	// Identicons of Status users, by sender ID as connectors build icon URLs.
	status, body := httpGet(t, "http://"+admin+"/identicons/"+url.PathEscape("status:"+testChatKey)+".png")
	if status != http.StatusOK || !strings.HasPrefix(body, "\x89PNG") {
		t.Errorf("/identicons: %d, %d bytes", status, len(body))
	}
	if status, _ := httpGet(t, "http://"+admin+"/identicons/api:alice"); status != http.StatusNotFound {
		t.Errorf("/identicons of a non-Status ID: %d", status)
	}

	token, err := os.ReadFile(filepath.Join(dir, "api.token"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+apiAddr+"/v1/channels/status/messages",
		strings.NewReader(`{"user":"alice","name":"Alice","text":"hello"}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	want := []string{
		`statusgate_connector_state{network="api",state="connected"} 1`,
		`statusgate_events_in_total{network="api",route="status"} 1`,
		`statusgate_events_out_total{network="status",route="status"} 1`,
		"statusgate_peers 0",
		`statusgate_protocol_peers{protocol="shh"} 0`,
		`statusgate_protocol_peers{protocol="waku"} 0`,
		`statusgate_envelopes_received_total{protocol="waku"} 0`,
		`statusgate_signer_recoveries_total{how="recovered"} `,
		`statusgate_signer_recoveries_total{how="cached"} `,
		"statusgate_status_send_seconds_count 1",
		`statusgate_ratchet_work_refused_total{work="secret"} 0`,
		"statusgate_ratchet_bundles_received_total 0",
		"go_goroutines ",
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		_, body := httpGet(t, "http://"+admin+"/metrics")
		var missing []string
		for _, w := range want {
			if !strings.Contains(body, w) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q:\n%s", missing, body)
		}
		time.Sleep(100 * time.Millisecond)
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
	secret, err := os.ReadFile(filepath.Join(dir, "gateway.secret"))
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{"gateway secret": string(secret), "api token": string(token)} {
		if s = strings.TrimSpace(s); s == "" || strings.Contains(logs.String(), s) {
			t.Errorf("the %s appears in the log (or is empty)", name)
		}
	}
	if !strings.Contains(logs.String(), "node stopped") {
		t.Errorf("no clean stop logged:\n%s", logs)
	}
}

// testChatKey is a valid uncompressed chat key (the secp256k1 generator point).
const testChatKey = "0x0479be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8"
