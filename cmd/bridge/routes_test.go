package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/status"
	"github.com/statusgate/statusgate/test/statusnet"
)

// adminCall sends method to the admin server's path with body (JSON) and auth
// ("" for none), and returns the status and body.
func adminCall(t *testing.T, admin, method, path, auth, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+admin+path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// channelEvents follows the api channel name as Server-Sent Events (each event's text).
func channelEvents(t *testing.T, r *routeRun, name string) <-chan string {
	t.Helper()
	req, _ := http.NewRequestWithContext(r.ctx, http.MethodGet, "http://"+r.apiAddr+"/v1/channels/"+name+"/events", nil)
	req.Header.Set("Authorization", r.auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream %s: %d", name, resp.StatusCode)
	}
	t.Cleanup(func() { resp.Body.Close() })
	out := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var ev struct{ Text string }
				if json.Unmarshal([]byte(data), &ev) == nil {
					out <- ev.Text
				}
			}
		}
	}()
	return out
}

// TestRoutes_adminAPI: a route added through the admin API of a running gateway carries
// messages both ways (its api channel served at once), stays after a restart, and
// carries nothing once removed with `bridge routes remove`; bad requests get a clear 4xx
// and change nothing.
func TestRoutes_adminAPI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	admin, apiAddr, p2p := freeAddr(t), freeAddr(t), freeAddr(t)
	// A Status user's node, which the gateway dials (again after its restart).
	nd := statusnet.NewNode(t, node.Config{})
	p := writeConfig(t, "data_dir: "+dir+`
node:
  listen_addr: `+p2p+`
  static_peers: ["`+nd.Enode()+`"]
gateway:
  routes:
    - chat: status
      channels: [{channel: "api:status"}]
http:
  listen: `+admin+`
connectors:
  api: {enabled: true, listen: `+apiAddr+`}
`)
	r := startRoute(t, p, dir, admin, apiAddr, startupTimeout)
	tok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	auth := "Bearer " + strings.TrimSpace(string(tok))

	// The Status user joins #news once its node is connected to the gateway's.
	raw, err := os.ReadFile(filepath.Join(dir, "nodekey"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := hex.DecodeString(strings.TrimSpace(string(raw)))
	gwKey, err := crypto.ToECDSA(b)
	if err != nil {
		t.Fatal(err)
	}
	_, portStr, _ := net.SplitHostPort(p2p)
	port, _ := strconv.Atoi(portStr)
	gwEnode := enode.NewV4(&gwKey.PublicKey, net.IPv4(127, 0, 0, 1), port, port)
	statusnet.WaitPeer(t, nd, gwEnode.ID())
	uc, err := status.New(nd, status.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	news, err := uc.Join(ctx, "news")
	if err != nil {
		t.Fatal(err)
	}
	userKey, _ := crypto.GenerateKey()
	statusSide := func(want string) {
		t.Helper()
		for {
			select {
			case m := <-news.Messages():
				if strings.Contains(m.Text, want) {
					return
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("#news got no %q", want)
			}
		}
	}
	apiSide := func(events <-chan string, want string) {
		t.Helper()
		select {
		case text := <-events:
			if text != want {
				t.Fatalf("api:news got %q, want %q", text, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("api:news got nothing\n%s", r.logs)
		}
	}
	post := func(channel, body string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+apiAddr+"/v1/channels/"+channel+"/messages", strings.NewReader(body))
		req.Header.Set("Authorization", r.auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	routes := func() string {
		t.Helper()
		code, body := adminCall(t, admin, http.MethodGet, "/v1/routes", auth, "")
		if code != http.StatusOK {
			t.Fatalf("GET /v1/routes: %d %s", code, body)
		}
		return body
	}

	if code, body := adminCall(t, admin, http.MethodPost, "/v1/routes", auth, `{"chat":"news","channels":[{"channel":"api:news"}]}`); code != http.StatusCreated {
		t.Fatalf("POST /v1/routes: %d %s", code, body)
	}
	both := func(n string) {
		t.Helper()
		events := channelEvents(t, r, "news")
		start := time.Now()
		if _, err := news.Send(context.Background(), "status says "+n, userKey); err != nil {
			t.Fatal(err)
		}
		apiSide(events, "status says "+n)
		t.Logf("Status → api:news in %s", time.Since(start).Round(time.Millisecond))
		start = time.Now()
		if code := post("news", `{"user":"bob","name":"Bob","text":"api says `+n+`"}`); code != http.StatusAccepted {
			t.Fatalf("POST to api:news: %d", code)
		}
		statusSide("[api] <Bob> api says " + n)
		t.Logf("api:news → Status in %s", time.Since(start).Round(time.Millisecond))
	}
	both("1")

	// Bad requests: a clear 4xx each, the table unchanged.
	table := routes()
	for name, tc := range map[string]struct {
		auth, body string
		want       int
	}{
		"no token":        {"", `{"chat":"x","channels":[{"channel":"api:x"}]}`, http.StatusUnauthorized},
		"wrong token":     {"Bearer nope", `{"chat":"x","channels":[{"channel":"api:x"}]}`, http.StatusUnauthorized},
		"unknown network": {auth, `{"chat":"x","channels":[{"channel":"nope:x"}]}`, http.StatusBadRequest},
		"malformed":       {auth, `{"chat":"x","channels":[{"channel":"bad"}]}`, http.StatusBadRequest},
		"bad chat":        {auth, `{"chat":"Bad Chat"}`, http.StatusBadRequest},
		"bad direction":   {auth, `{"chat":"x","channels":[{"channel":"api:x","direction":"up"}]}`, http.StatusBadRequest},
		"not json":        {auth, `{"chat":`, http.StatusBadRequest},
		"unknown field":   {auth, `{"chat":"x","chanels":[]}`, http.StatusBadRequest},
		"duplicate route": {auth, `{"chat":"news","channels":[{"channel":"api:other"}]}`, http.StatusConflict},
		"channel taken":   {auth, `{"chat":"x","channels":[{"channel":"api:status"}]}`, http.StatusConflict},
	} {
		if code, body := adminCall(t, admin, http.MethodPost, "/v1/routes", tc.auth, tc.body); code != tc.want || !strings.Contains(body, `"error"`) {
			t.Errorf("%s: %d %s, want %d with an error", name, code, body, tc.want)
		}
	}
	if code, _ := adminCall(t, admin, http.MethodDelete, "/v1/routes/nonesuch", auth, ""); code != http.StatusNotFound {
		t.Errorf("DELETE an unknown route: %d", code)
	}
	if code, _ := adminCall(t, admin, http.MethodDelete, "/v1/routes/news", "", ""); code != http.StatusUnauthorized {
		t.Errorf("DELETE without a token: %d", code)
	}
	if after := routes(); after != table {
		t.Errorf("refused requests changed the table:\n%s\nwas\n%s", after, table)
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"routes", "-config", p, "list"}, nil, &out, &errb); code != exitOK ||
		!strings.Contains(out.String(), "news\tapi:news") || !strings.Contains(out.String(), "status\tapi:status") {
		t.Errorf("bridge routes list: exit %d\n%s%s", code, out.String(), errb.String())
	}

	// A restart: the route is back and carries messages.
	r.stop(t)
	r = startRoute(t, p, dir, admin, apiAddr, startupTimeout)
	statusnet.WaitPeer(t, nd, gwEnode.ID()) // the gateway dials its static peer again
	if !strings.Contains(routes(), `"news"`) {
		t.Fatalf("after a restart the table is\n%s", routes())
	}
	both("2")

	// Removed with the CLI: nothing more either way.
	out.Reset()
	errb.Reset()
	events := channelEvents(t, r, "news")
	if code := run(context.Background(), []string{"routes", "-config", p, "remove", "news"}, nil, &out, &errb); code != exitOK {
		t.Fatalf("bridge routes remove: exit %d %s", code, errb.String())
	}
	if _, err := news.Send(context.Background(), "status says 3", userKey); err != nil {
		t.Fatal(err)
	}
	if code := post("news", `{"user":"bob","text":"api says 3"}`); code != http.StatusNotFound {
		t.Errorf("POST to a removed route's channel: %d, want 404", code)
	}
	select {
	case text := <-events:
		t.Errorf("api:news got %q after the route was removed", text)
	case <-time.After(2 * time.Second):
	}
	if strings.Contains(routes(), `"news"`) {
		t.Errorf("removed route still in the table:\n%s", routes())
	}
	r.stop(t)
}
