package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statusgate/statusgate/bridges"
)

func TestPost_deliversEvent(t *testing.T) {
	r := start(t, testConfig(), func(c *Connector) {
		c.now = func() time.Time { return time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC) }
	})
	resp := r.post(t, "status", `{"user":"alice:1","name":"Alice","text":"hello *world*","id":"m-1","reply_to":"api:status/0123"}`)
	if resp.status != http.StatusAccepted {
		t.Fatalf("status %d %s", resp.status, resp.body)
	}
	if got := decodeJSON[map[string]string](t, resp.body)["id"]; got != "api:status/m-1" {
		t.Errorf("id %q, want api:status/m-1", got)
	}
	resp = r.post(t, "dev", `{"user":"bot","text":"waves","kind":"action"}`)
	if resp.status != http.StatusAccepted {
		t.Fatalf("status %d %s", resp.status, resp.body)
	}
	r.post(t, "dev", `{"user":"bot","text":"restarting","kind":"notice"}`)

	evs := r.host.Events()
	if len(evs) != 3 {
		t.Fatalf("%d events delivered, want 3", len(evs))
	}
	want := bridges.Event{
		Kind:    bridges.KindMessage,
		Origin:  bridges.Origin{Network: "api", Channel: "api:status", ID: "api:status/m-1"},
		Sender:  bridges.Sender{ID: "api:alice:1", Name: "Alice"},
		Text:    "hello *world*",
		ReplyTo: "api:status/0123",
		Time:    time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
	}
	if evs[0] != want {
		t.Errorf("delivered\n%+v\nwant\n%+v", evs[0], want)
	}
	if evs[1].Kind != bridges.KindAction || evs[1].Origin.Channel != "api:dev" || evs[1].Sender.ID != "api:bot" {
		t.Errorf("action delivered as %+v", evs[1])
	}
	if !regexp.MustCompile(`^api:dev/[0-9a-f]{32}$`).MatchString(string(evs[1].Origin.ID)) {
		t.Errorf("random origin ID %q", evs[1].Origin.ID)
	}
	if evs[2].Kind != bridges.KindNotice {
		t.Errorf("notice delivered as %s", evs[2].Kind)
	}
	for _, ev := range evs {
		if err := ev.Validate(); err != nil {
			t.Error(err)
		}
	}
}

func TestPost_clientIDIsIdempotent(t *testing.T) {
	r := start(t, testConfig(), nil)
	body := `{"user":"alice","text":"once","id":"retry-me"}`
	first, second := r.post(t, "status", body), r.post(t, "status", body)
	if first.status != http.StatusAccepted || second.status != http.StatusAccepted {
		t.Fatalf("statuses %d, %d", first.status, second.status)
	}
	a, b := decodeJSON[map[string]string](t, first.body)["id"], decodeJSON[map[string]string](t, second.body)["id"]
	if a != b || a != "api:status/retry-me" {
		t.Errorf("ids %q and %q, want both api:status/retry-me", a, b)
	}
	evs := r.host.Events()
	if len(evs) != 2 || evs[0].Origin != evs[1].Origin {
		t.Errorf("the gateway cannot deduplicate: %+v", evs)
	}
	// Without an id, each post is a new message.
	c, d := r.post(t, "status", `{"user":"alice","text":"x"}`), r.post(t, "status", `{"user":"alice","text":"x"}`)
	if string(c.body) == string(d.body) {
		t.Errorf("two posts without id got the same answer %s", c.body)
	}
}

func TestPost_statuses(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBodyBytes = 1024
	r := start(t, cfg, nil)
	const ok = `{"user":"alice","text":"hi"}`
	big := `{"user":"alice","text":"` + strings.Repeat("x", 1100) + `"}`
	cases := []struct {
		name    string
		method  string
		path    string
		token   string
		body    io.Reader
		deliver error // returned by the host
		want    int
		errLike string
	}{
		{name: "accepted", body: strings.NewReader(ok), want: 202},
		{name: "invalid UTF-8", body: strings.NewReader("{\"user\":\"alice\",\"text\":\"h\xffi\"}"), want: 400, errLike: "UTF-8"},
		{name: "invalid UTF-8 in a field name", body: strings.NewReader("{\"user\":\"alice\",\"text\":\"hi\",\"\xfe\":1}"), want: 400, errLike: "UTF-8"},
		{name: "oversize", body: strings.NewReader(big), want: 413},
		{name: "oversize chunked", body: io.MultiReader(strings.NewReader(big)), want: 413},
		{name: "unknown field", body: strings.NewReader(`{"user":"alice","text":"hi","color":"red"}`), want: 400, errLike: "color"},
		{name: "not JSON", body: strings.NewReader(`user=alice&text=hi`), want: 400},
		{name: "empty body", body: strings.NewReader(``), want: 400},
		{name: "JSON null", body: strings.NewReader(`null`), want: 400, errLike: "user"},
		{name: "array", body: strings.NewReader(`[]`), want: 400},
		{name: "trailing data", body: strings.NewReader(ok + `{}`), want: 400, errLike: "after"},
		{name: "missing user", body: strings.NewReader(`{"text":"hi"}`), want: 400, errLike: "user"},
		{name: "long user", body: strings.NewReader(`{"user":"` + strings.Repeat("u", 129) + `","text":"hi"}`), want: 400, errLike: "user"},
		{name: "control in user", body: strings.NewReader(`{"user":"al\nice","text":"hi"}`), want: 400, errLike: "user"},
		{name: "missing text", body: strings.NewReader(`{"user":"alice"}`), want: 400, errLike: "text"},
		{name: "control in text", body: strings.NewReader(`{"user":"alice","text":"a\u0000b"}`), want: 400, errLike: "text"},
		{name: "CR in text", body: strings.NewReader(`{"user":"alice","text":"a\r\nb"}`), want: 400, errLike: "text"},
		{name: "bad kind", body: strings.NewReader(`{"user":"alice","text":"hi","kind":"edit"}`), want: 400, errLike: "kind"},
		{name: "id with slash", body: strings.NewReader(`{"user":"alice","text":"hi","id":"a/b"}`), want: 400, errLike: "id"},
		{name: "long id", body: strings.NewReader(`{"user":"alice","text":"hi","id":"` + strings.Repeat("i", 201) + `"}`), want: 400, errLike: "id"},
		{name: "reply_to of another network", body: strings.NewReader(`{"user":"alice","text":"hi","reply_to":"status:0xabc"}`), want: 400, errLike: "reply_to"},
		{name: "reply_to not an ID", body: strings.NewReader(`{"user":"alice","text":"hi","reply_to":"nonsense"}`), want: 400, errLike: "reply_to"},
		{name: "wrong token", token: "nope", body: strings.NewReader(ok), want: 401},
		{name: "token prefix", token: testToken[:10], body: strings.NewReader(ok), want: 401},
		{name: "missing token", token: "-", body: strings.NewReader(ok), want: 401},
		{name: "query token only for events", token: "-", path: "/v1/channels/status/messages?access_token=" + testToken, body: strings.NewReader(ok), want: 401},
		{name: "unknown channel", path: "/v1/channels/nope/messages", body: strings.NewReader(ok), want: 404},
		{name: "unknown path", path: "/v2/x", want: 404},
		{name: "unknown path without token", token: "-", path: "/v2/x", want: 401},
		{name: "wrong method", method: "GET", want: 405},
		{name: "refused by gateway", body: strings.NewReader(ok), deliver: bridges.Permanent(fmt.Errorf("%w: muted user", bridges.ErrInvalidEvent)), want: 422, errLike: "muted"},
		{name: "gateway unavailable", body: strings.NewReader(ok), deliver: fmt.Errorf("%w: database is locked", bridges.ErrTransient), want: 503, errLike: "retry"},
		{name: "gateway context error", body: strings.NewReader(ok), deliver: context.DeadlineExceeded, want: 503},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method, path, token := tc.method, tc.path, tc.token
			if method == "" {
				method = "POST"
			}
			if path == "" {
				path = "/v1/channels/status/messages"
			}
			switch token {
			case "":
				token = testToken
			case "-":
				token = ""
			}
			r.host.SetDeliver(func(context.Context, bridges.Event) error { return tc.deliver })
			resp := r.do(t, method, path, token, tc.body)
			if resp.status != tc.want {
				t.Fatalf("status %d, want %d (%s)", resp.status, tc.want, resp.body)
			}
			if ct := resp.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if tc.want >= 400 {
				msg := decodeJSON[map[string]string](t, resp.body)["error"]
				if msg == "" || !strings.Contains(msg, tc.errLike) {
					t.Errorf("error %q, want one mentioning %q", msg, tc.errLike)
				}
				if strings.Contains(msg, testToken) {
					t.Errorf("error %q holds the token", msg)
				}
			}
			switch tc.want {
			case 401:
				if !strings.HasPrefix(resp.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate %q", resp.header.Get("WWW-Authenticate"))
				}
			case 503:
				if resp.header.Get("Retry-After") != "1" {
					t.Errorf("Retry-After %q", resp.header.Get("Retry-After"))
				}
				if id := decodeJSON[map[string]string](t, resp.body)["retry_id"]; len(id) != 32 {
					t.Errorf("retry_id %q", id)
				}
			case 405:
				if resp.header.Get("Allow") != "POST" {
					t.Errorf("Allow %q", resp.header.Get("Allow"))
				}
			}
		})
	}
}

func TestChannels_list(t *testing.T) {
	r := start(t, testConfig(), nil)
	resp := r.do(t, "GET", "/v1/channels", testToken, nil)
	if resp.status != 200 {
		t.Fatalf("status %d %s", resp.status, resp.body)
	}
	if got := decodeJSON[[]string](t, resp.body); len(got) != 2 || got[0] != "status" || got[1] != "dev" {
		t.Errorf("channels %q", got)
	}
	if resp := r.do(t, "GET", "/v1/channels", "", nil); resp.status != 401 {
		t.Errorf("without token: %d", resp.status)
	}
}

func TestPost_deliverWaitsForGateway(t *testing.T) {
	// Deliver blocks until the gateway persisted the event; the client's answer waits
	// for it, and a client that goes away cancels it.
	r := start(t, testConfig(), nil)
	entered := make(chan struct{})
	r.host.SetDeliver(func(ctx context.Context, ev bridges.Event) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", r.url+"/v1/channels/status/messages", strings.NewReader(`{"user":"a","text":"b"}`))
	req.Header.Set("Authorization", "Bearer "+testToken)
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-entered
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("client error %v", err)
	}
}

// TestPost_rateLimited is the api's part of issue 15 finding 8: the token may post as
// any user name, so the whole connector has a bucket beside each user's. Before, every
// POST was accepted (the gateway exempts the api network from its flood control): 10 of
// 10 from one user, and names minted without end. After: a user past its burst, and
// everyone past the connector's, get 429 with Retry-After, nothing reaches the gateway,
// refusals are counted and logged once a minute, and the user buckets are bounded.
func TestPost_rateLimited(t *testing.T) {
	cfg := testConfig()
	cfg.RateLimit = RateLimit{PerSecond: 5, Burst: 6, UserPerSecond: 1, UserBurst: 3, MaxUsers: 4}
	var now atomic.Int64
	now.Store(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	r := start(t, cfg, func(c *Connector) {
		c.now = func() time.Time { return time.Unix(0, now.Load()) }
	})
	post := func(user, id string) response {
		return r.post(t, "status", fmt.Sprintf(`{"user":%q,"text":"hi","id":%q}`, user, id))
	}
	want := func(resp response, status int, what string) {
		t.Helper()
		if resp.status != status {
			t.Fatalf("%s: %d %s, want %d", what, resp.status, resp.body, status)
		}
	}
	for i := range 3 {
		want(post("alice", fmt.Sprint("a", i)), http.StatusAccepted, "alice within her burst")
	}
	resp := post("alice", "a3")
	want(resp, http.StatusTooManyRequests, "alice past her burst")
	if ra := resp.header.Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After %q, want 1", ra)
	}
	if !strings.Contains(string(resp.body), "this user's") {
		t.Errorf("429 body %s does not say whose share", resp.body)
	}
	for i := range 3 {
		want(post("bob", fmt.Sprint("b", i)), http.StatusAccepted, "bob within his burst and the connector's")
	}
	resp = post("carol", "c0") // the connector's burst of 6 is spent
	want(resp, http.StatusTooManyRequests, "carol past the connector's burst")
	if !strings.Contains(string(resp.body), "all users'") {
		t.Errorf("429 body %s does not say whose share", resp.body)
	}
	if n := len(r.host.Events()); n != 6 {
		t.Fatalf("%d events reached the gateway, want 6", n)
	}

	// A second later: a token each for alice and carol (carol's refusal took none).
	now.Add(int64(time.Second))
	want(post("alice", "a3"), http.StatusAccepted, "alice's retry a second later")
	want(post("carol", "c0"), http.StatusAccepted, "carol's retry a second later")
	want(post("alice", "a4"), http.StatusTooManyRequests, "alice again at once")

	if n := r.c.RateLimitedRequests(); n != 3 {
		t.Errorf("RateLimitedRequests %d, want 3", n)
	}
	if n := strings.Count(r.host.Logs(), "refused by the rate limit"); n != 1 {
		t.Errorf("%d log lines about refusals within a minute, want 1:\n%s", n, r.host.Logs())
	}
	// Minting names: the user buckets stay bounded (least recently used evicted), and
	// the connector's bucket bounds what the names get.
	now.Add(int64(time.Minute))
	accepted := 0
	for i := range 50 {
		if post(fmt.Sprint("minted", i), "m"+fmt.Sprint(i)).status == http.StatusAccepted {
			accepted++
		}
	}
	if accepted != 6 {
		t.Errorf("%d of 50 minted names accepted at once, want the connector's burst, 6", accepted)
	}
	if n := r.c.posts.userCount(); n != 4 {
		t.Errorf("%d user buckets kept, want MaxUsers 4", n)
	}
}
