package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestRun_apiRateLimited is issue 15 finding 8 for the api network through bridge run:
// POSTs past connectors.api.rate_limit are answered 429 and counted in
// statusgate_rate_limited_requests_total, and the gateway's own flood control exempts
// the api connector under whatever name it has, so that what the api accepted (202) is
// relayed, not dropped behind the caller's back. Before: every POST was accepted, and
// with the api renamed ("bots") the gateway's per-sender limit (burst 10) dropped 2 of
// 12 accepted POSTs of one user (exempt: [api] named the default network only).
func TestRun_apiRateLimited(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	admin, apiAddr := freeAddr(t), freeAddr(t)
	p := writeConfig(t, "data_dir: "+dir+`
node:
  listen_addr: 127.0.0.1:0
gateway:
  routes:
    - chat: status
      channels:
        - channel: bots:status
http:
  listen: `+admin+`
connectors:
  api:
    enabled: true
    name: bots
    listen: `+apiAddr+`
    rate_limit: {user_burst: 12}
`)
	r := startRoute(t, p, dir, admin, apiAddr, startupTimeout)
	post := func(i int) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+apiAddr+"/v1/channels/status/messages",
			strings.NewReader(fmt.Sprintf(`{"user":"alice","text":"burst %d","id":"m%d"}`, i, i)))
		req.Header.Set("Authorization", r.auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 12 {
		if code := post(i); code != http.StatusAccepted {
			t.Fatalf("POST %d of alice's burst of 12: %d, want 202", i, code)
		}
	}
	if code := post(12); code != http.StatusTooManyRequests {
		t.Fatalf("POST past alice's burst: %d, want 429", code)
	}
	_, body := httpGet(t, "http://"+admin+"/metrics")
	if want := `statusgate_rate_limited_requests_total{network="bots"} 1`; !strings.Contains(body, want) {
		t.Errorf("/metrics lacks %q", want)
	}
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "statusgate_events_dropped_total") && strings.Contains(l, `"rate_limited"`) && !strings.HasSuffix(l, " 0") {
			t.Errorf("the gateway dropped POSTs the api accepted: %s", l)
		}
	}
	r.stop(t)
}
