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
)

// routeRun is `bridge run` on a configuration bridging api:status to another
// network, for the connector route tests.
type routeRun struct {
	ctx     context.Context
	cancel  context.CancelFunc
	code    chan int
	logs    *logWatch
	apiAddr string
	admin   string // the admin server (/readyz, /metrics)
	auth    string // "Bearer <api token>"
}

// startupTimeout bounds a `bridge run` (or `bridge chat`) from its start to /readyz
// answering 200 (or to the session's first line after its chat is joined). Its
// work is CPU: the store's migrations, the node's keys, each route's chat key (PBKDF2,
// 65,536 rounds: 2-12 s each under -race at load 20). 20 s was too short under -race at
// load 18 (TestRun_slackEditsAndDeletesOnlyByAuthor: the store took 4 s to open, and
// 20 s after the start the gateway was not yet running).
const startupTimeout = 60 * time.Second

// startRoute runs `bridge init -keys` and `bridge run` on the configuration at p
// (data under dataDir, admin server on admin, api connector on apiAddr) and waits,
// up to ready, for /readyz to answer 200.
func startRoute(t *testing.T, p, dataDir, admin, apiAddr string, ready time.Duration) *routeRun {
	t.Helper()
	var out bytes.Buffer
	if code := run(context.Background(), []string{"init", "-keys", "-config", p}, nil, &out, &out); code != exitOK {
		t.Fatalf("init -keys: %d\n%s", code, out.String())
	}
	r := &routeRun{code: make(chan int, 1), logs: newLogWatch("gateway running"), apiAddr: apiAddr, admin: admin}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	t.Cleanup(r.cancel)
	go func() { r.code <- run(r.ctx, []string{"run", "-config", p}, nil, &bytes.Buffer{}, r.logs) }()
	deadline := time.Now().Add(ready)
	for {
		status, body := httpGet(t, "http://"+admin+"/readyz")
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz: %d %s\n%s", status, body, r.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	token, err := os.ReadFile(filepath.Join(dataDir, "api.token"))
	if err != nil {
		t.Fatal(err)
	}
	r.auth = "Bearer " + strings.TrimSpace(string(token))
	return r
}

// events follows the api channel "status" as Server-Sent Events and returns each
// event's JSON data.
func (r *routeRun) events(t *testing.T) <-chan map[string]any {
	t.Helper()
	req, _ := http.NewRequestWithContext(r.ctx, http.MethodGet, "http://"+r.apiAddr+"/v1/channels/status/events", nil)
	req.Header.Set("Authorization", r.auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
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
	return events
}

// post POSTs body to the api channel "status" and wants 202.
func (r *routeRun) post(t *testing.T, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+r.apiAddr+"/v1/channels/status/messages", strings.NewReader(body))
	req.Header.Set("Authorization", r.auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
}

// nextEvent returns the next SSE event, failing t after timeout.
func (r *routeRun) nextEvent(t *testing.T, events <-chan map[string]any, timeout time.Duration) map[string]any {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(timeout):
		t.Fatalf("nothing reached the SSE stream\n%s", r.logs)
		return nil
	}
}

// stop cancels the run and wants a clean exit.
func (r *routeRun) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case c := <-r.code:
		if c != exitOK {
			t.Errorf("run: exit %d:\n%s", c, r.logs)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return within 15 s of cancel")
	}
}
