package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/bridges/bridgestest"
	"github.com/statusgate/statusgate/test/slackfake"
)

// The Events API transport. Slack, which would POST the events, cannot run here: the
// tests POST them as Slack does (slackfake.Callback payloads, signed with the signing
// secret by slackfake.SignedRequest: v0:<timestamp>:<body>, HMAC-SHA256, with Slack's
// retry headers) to the connector's real endpoint on 127.0.0.1. users.info, auth.test
// and chat.postMessage are served by test/slackfake.

func httpConfig(fake *slackfake.Server) Config {
	cfg := testConfig(fake)
	cfg.Transport, cfg.AppToken, cfg.SigningSecret = TransportHTTP, "", slackfake.SigningSecret
	cfg.Listen = "127.0.0.1:0"
	return cfg
}

// eventsURL is the URL of r's Events API endpoint; r must be connected.
func eventsURL(t *testing.T, r *running) string {
	t.Helper()
	addr := r.c.httpAddr.Load()
	if addr == nil {
		t.Fatal("events endpoint not listening")
	}
	return "http://" + *addr + r.c.cfg.EventsPath
}

func postEvent(t *testing.T, url string, body []byte, retry int) (int, []byte) {
	t.Helper()
	code, reply, err := slackfake.PostEvent(url, slackfake.SigningSecret, body, retry)
	if err != nil {
		t.Fatal(err)
	}
	return code, reply
}

func send(t *testing.T, req *http.Request) int {
	t.Helper()
	resp, err := (&http.Client{Timeout: wait}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestEventsHTTP_urlVerification(t *testing.T) {
	fake := newFake(t)
	r := start(t, httpConfig(fake), false)
	body := []byte(`{"token":"unused","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`)
	code, reply := postEvent(t, eventsURL(t, r), body, 0)
	var got struct{ Challenge string }
	if err := json.Unmarshal(reply, &got); code != http.StatusOK || err != nil || got.Challenge != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
		t.Errorf("url_verification answered %d %s", code, reply)
	}
}

func TestEventsHTTP_deliversMessage(t *testing.T) {
	fake := newFake(t)
	r := start(t, httpConfig(fake), false)
	msg := fake.Store(chGeneral, "U0ALICE", "hello *world*", "")
	code, _ := postEvent(t, eventsURL(t, r), slackfake.Callback("Ev0001", msg), 0)
	if code != http.StatusOK {
		t.Fatalf("event answered %d, want 200", code)
	}
	// 200 comes only after Deliver returned nil: the event is there already.
	evs := r.host.Events()
	if len(evs) != 1 {
		t.Fatalf("delivered %d events before the 200, want 1", len(evs))
	}
	ev := evs[0]
	if ev.Kind != bridges.KindMessage || ev.Text != "hello **world**" || ev.Sender.Name != "Alice" ||
		ev.Origin.ID != mustMsg(t, chGeneral, msg["ts"].(string)) || ev.Sender.IsBridge {
		t.Errorf("delivered %+v", ev)
	}
	// Only the events path is served, only POST.
	if code, _ := postEvent(t, eventsURL(t, r)+"x", slackfake.Callback("Ev0002", msg), 0); code != http.StatusNotFound {
		t.Errorf("other path answered %d, want 404", code)
	}
	req, _ := http.NewRequest(http.MethodGet, eventsURL(t, r), nil)
	if code := send(t, req); code != http.StatusMethodNotAllowed {
		t.Errorf("GET answered %d, want 405", code)
	}
}

func TestEventsHTTP_badSignatureRefused(t *testing.T) {
	fake := newFake(t)
	r := start(t, httpConfig(fake), false)
	url := eventsURL(t, r)
	body := slackfake.Callback("Ev0001", fake.Store(chGeneral, "U0ALICE", "forged", ""))

	wrongSecret, _ := slackfake.SignedRequest(url, "not-the-signing-secret", time.Now(), body, 0)
	tampered, _ := slackfake.SignedRequest(url, slackfake.SigningSecret, time.Now(), body, 0)
	tampered.Body = http.NoBody
	tampered.ContentLength = 0
	tampered2, _ := slackfake.SignedRequest(url, slackfake.SigningSecret, time.Now(), append([]byte(" "), body...), 0)
	tampered2.Header.Set("X-Slack-Signature", slackfake.Sign(slackfake.SigningSecret, time.Now().Unix(), body))
	unsigned, _ := slackfake.SignedRequest(url, slackfake.SigningSecret, time.Now(), body, 0)
	unsigned.Header.Del("X-Slack-Signature")
	noTimestamp, _ := slackfake.SignedRequest(url, slackfake.SigningSecret, time.Now(), body, 0)
	noTimestamp.Header.Del("X-Slack-Request-Timestamp")
	// Replayed with a stale timestamp: correctly signed, six minutes old.
	stale, _ := slackfake.SignedRequest(url, slackfake.SigningSecret, time.Now().Add(-6*time.Minute), body, 0)
	future, _ := slackfake.SignedRequest(url, slackfake.SigningSecret, time.Now().Add(6*time.Minute), body, 0)

	for name, req := range map[string]*http.Request{
		"wrong secret": wrongSecret, "body changed": tampered, "body changed 2": tampered2,
		"unsigned": unsigned, "no timestamp": noTimestamp, "stale timestamp": stale, "future timestamp": future,
	} {
		if code := send(t, req); code != http.StatusUnauthorized {
			t.Errorf("%s: answered %d, want 401", name, code)
		}
	}
	// A good request after them goes through, and nothing else was delivered.
	if code, _ := postEvent(t, url, slackfake.Callback("Ev0002", fake.Store(chGeneral, "U0BOB", "genuine", "")), 0); code != http.StatusOK {
		t.Fatalf("genuine event answered %d", code)
	}
	if evs := r.host.Events(); len(evs) != 1 || evs[0].Text != "genuine" {
		t.Errorf("delivered %+v, want only the genuine event", evs)
	}
}

// Slack retries an event (same event_id, X-Slack-Retry-Num) when it did not see a 2xx
// in time; the retry of a delivered event is answered 200 and not delivered again.
func TestEventsHTTP_retryDeliveredOnce(t *testing.T) {
	fake := newFake(t)
	r := start(t, httpConfig(fake), false)
	var calls atomic.Int32
	r.host.SetDeliver(func(context.Context, bridges.Event) error { calls.Add(1); return nil })
	body := slackfake.Callback("Ev0001", fake.Store(chGeneral, "U0ALICE", "once", ""))
	for retry := range 3 {
		if code, _ := postEvent(t, eventsURL(t, r), body, retry); code != http.StatusOK {
			t.Errorf("attempt %d answered %d, want 200", retry, code)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("Deliver called %d times, want 1", n)
	}
	// Another event is still delivered.
	postEvent(t, eventsURL(t, r), slackfake.Callback("Ev0002", fake.Store(chGeneral, "U0ALICE", "twice", "")), 0)
	if n := calls.Load(); n != 2 {
		t.Errorf("Deliver called %d times after a second event, want 2", n)
	}
}

// A retry that arrives while the first attempt is still in Deliver (Slack retries
// after 3 s) waits for it and is not delivered twice.
func TestEventsHTTP_retryWhileInFlight(t *testing.T) {
	fake := newFake(t)
	r := start(t, httpConfig(fake), false)
	var calls atomic.Int32
	entered, release := make(chan struct{}), make(chan struct{})
	r.host.SetDeliver(func(ctx context.Context, _ bridges.Event) error {
		if calls.Add(1) == 1 {
			close(entered)
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	body := slackfake.Callback("Ev0001", fake.Store(chGeneral, "U0ALICE", "slow", ""))
	codes := make([]int, 2)
	var wg sync.WaitGroup
	wg.Go(func() { codes[0], _, _ = slackfake.PostEvent(eventsURL(t, r), slackfake.SigningSecret, body, 0) })
	<-entered
	wg.Go(func() { codes[1], _, _ = slackfake.PostEvent(eventsURL(t, r), slackfake.SigningSecret, body, 1) })
	close(release)
	wg.Wait()
	if codes[0] != http.StatusOK || codes[1] != http.StatusOK {
		t.Errorf("answers %v, want both 200", codes)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("Deliver called %d times, want 1", n)
	}
}

// A transient Deliver error is answered 500, so that Slack retries; the retry is
// delivered, with the same Origin (the gateway's own dedupe key).
func TestEventsHTTP_transientErrorThenRetry(t *testing.T) {
	fake := newFake(t)
	r := start(t, httpConfig(fake), false)
	var mu sync.Mutex
	var attempts []bridges.Origin
	r.host.SetDeliver(func(_ context.Context, ev bridges.Event) error {
		mu.Lock()
		defer mu.Unlock()
		attempts = append(attempts, ev.Origin)
		if len(attempts) == 1 {
			return errors.New("store unavailable")
		}
		return nil
	})
	body := slackfake.Callback("Ev0001", fake.Store(chGeneral, "U0ALICE", "persist me", ""))
	if code, _ := postEvent(t, eventsURL(t, r), body, 0); code != http.StatusInternalServerError {
		t.Errorf("transient failure answered %d, want 500", code)
	}
	if n := len(r.host.Events()); n != 0 {
		t.Fatalf("%d events persisted after the failure", n)
	}
	if code, _ := postEvent(t, eventsURL(t, r), body, 1); code != http.StatusOK {
		t.Errorf("retry answered %d, want 200", code)
	}
	if code, _ := postEvent(t, eventsURL(t, r), body, 2); code != http.StatusOK {
		t.Errorf("second retry answered %d, want 200", code)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(attempts) != 2 || attempts[0] != attempts[1] {
		t.Errorf("Deliver attempts %+v, want two with one Origin", attempts)
	}
	if evs := r.host.Events(); len(evs) != 1 || evs[0].Text != "persist me" {
		t.Errorf("delivered %+v", evs)
	}
}

// A permanent rejection is answered 200: a retry cannot fix it.
func TestEventsHTTP_permanentErrorAcknowledged(t *testing.T) {
	fake := newFake(t)
	r := start(t, httpConfig(fake), false)
	r.host.SetDeliver(func(context.Context, bridges.Event) error {
		return bridges.Permanent(errors.New("invalid event"))
	})
	body := slackfake.Callback("Ev0001", fake.Store(chGeneral, "U0ALICE", "rejected", ""))
	if code, _ := postEvent(t, eventsURL(t, r), body, 0); code != http.StatusOK {
		t.Errorf("permanent rejection answered %d, want 200", code)
	}
}

// With the http transport, the gateway side is unchanged: Send posts over the Web API
// (test/slackfake), and our own post's event is delivered as the bridge's.
func TestEventsHTTP_sendAndEcho(t *testing.T) {
	fake := newFake(t)
	r := start(t, httpConfig(fake), false)
	rc, err := r.c.Send(context.Background(), statusOutbound(mustChannel(t, chGeneral), bridges.KindMessage, "m1", "from status"))
	if err != nil {
		t.Fatal(err)
	}
	h := fake.History(chGeneral)
	if len(h) != 1 || h[0].Text != "from status" || h[0].Username != "Carol" || rc.ID != mustMsg(t, chGeneral, h[0].TS) {
		t.Fatalf("Slack holds %+v, receipt %s", h, rc.ID)
	}
	echo := slackfake.Callback("Ev0001", map[string]any{
		"type": "message", "subtype": "bot_message", "channel": chGeneral, "bot_id": slackfake.BotID,
		"user": slackfake.BotUserID, "username": "Carol", "text": "from status", "ts": h[0].TS,
	})
	if code, _ := postEvent(t, eventsURL(t, r), echo, 0); code != http.StatusOK {
		t.Fatalf("echo answered %d", code)
	}
	if evs := r.host.Events(); len(evs) != 1 || !evs[0].Sender.IsBridge || evs[0].Origin.ID != rc.ID {
		t.Errorf("echo delivered as %+v", evs)
	}
}

// Until auth.test succeeds the connector cannot attribute events: it answers 503 so
// that Slack retries, and a rejected token ends the session (bad credentials), after
// which nothing listens until the gateway's next attempt: Slack retries that too.
func TestEventsHTTP_badBotToken(t *testing.T) {
	fake := newFake(t)
	cfg := httpConfig(fake)
	cfg.BotToken = "xoxb-wrong"
	r := start(t, cfg, true)
	r.host.WaitState(t, bridges.StateBadCredentials)
	body := slackfake.Callback("Ev0001", fake.Store(chGeneral, "U0ALICE", "early", ""))
	code, _, err := slackfake.PostEvent(eventsURL(t, r), slackfake.SigningSecret, body, 0)
	if err == nil && code != http.StatusServiceUnavailable {
		t.Errorf("event before auth answered %d, want 503 (or no answer between sessions)", code)
	}
	if n := len(r.host.Events()); n != 0 {
		t.Errorf("%d events delivered", n)
	}
}

// Run stops serving when its context ends, and a second connector cannot take a port
// in use (a run-time configuration fault: Run returns an error).
func TestEventsHTTP_shutdownAndListenError(t *testing.T) {
	fake := newFake(t)
	r := start(t, httpConfig(fake), false)
	url := eventsURL(t, r)

	cfg := httpConfig(fake)
	cfg.Listen = *r.c.httpAddr.Load()
	c2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Run(context.Background(), bridgestest.NewHost("slack")); err == nil {
		t.Error("Run on a port in use returned nil")
	}

	r.stop()
	if _, _, err := slackfake.PostEvent(url, slackfake.SigningSecret, []byte(`{}`), 0); err == nil {
		t.Error("endpoint still answers after Run returned")
	}
}

func TestRecentSet_bounded(t *testing.T) {
	s := newRecentSet(3)
	ctx := context.Background()
	for i := range 10 {
		id := "Ev" + strconv.Itoa(i)
		e, dup := s.begin(ctx, id)
		if dup || e == nil {
			t.Fatalf("%s: new event seen as duplicate", id)
		}
		s.finish(id, e, i != 9) // the last one failed
	}
	if n := s.len(); n != 3 {
		t.Errorf("set holds %d ids, want 3", n)
	}
	if _, dup := s.begin(ctx, "Ev8"); !dup {
		t.Errorf("recent handled event not a duplicate")
	}
	if e, dup := s.begin(ctx, "Ev9"); dup || e == nil {
		t.Errorf("failed event is a duplicate")
	}
	if e, dup := s.begin(ctx, "Ev0"); dup || e == nil {
		t.Errorf("evicted event is a duplicate")
	}
}

// FuzzEventsRequest sends random bodies and headers through the real Events API
// handler: it never panics, refuses everything without a valid, fresh signature
// (401), and delivers nothing it refused. sign asks for a valid signature of body,
// so that the parser behind the check is fuzzed too.
func FuzzEventsRequest(f *testing.F) {
	msg := map[string]any{"type": "message", "channel": chGeneral, "user": "U0ALICE", "text": "hi", "ts": "1795423259.000100"}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	f.Add(slackfake.Callback("Ev1", msg), "", now, true, "")
	f.Add(slackfake.Callback("Ev1", msg), "v0=00", now, false, "1")
	f.Add([]byte(`{"type":"url_verification","challenge":"x"}`), "", now, true, "")
	f.Add([]byte(`{"type":"event_callback","event":null}`), "", now, true, "")
	f.Add([]byte(`{"type":"event_callback","event_id":"Ev2","event":{"type":"message","subtype":"message_changed","channel":"C0GENERAL"}}`), "", now, true, "1")
	f.Add([]byte(`{"type":"event_callback","event":{"type":"nope"}}`), "", "1", true, "")
	f.Add([]byte("\x00{"), "v0=zz", "-1", false, "x")

	fake := newFake(f)
	c, err := New(httpConfig(fake))
	if err != nil {
		f.Fatal(err)
	}
	if _, err := c.authTest(context.Background()); err != nil {
		f.Fatal(err)
	}
	host := bridgestest.NewHost("slack")
	handler := c.eventsHandler(host)

	f.Fuzz(func(t *testing.T, body []byte, sig, ts string, sign bool, retry string) {
		req := httptest.NewRequest(http.MethodPost, DefaultEventsPath, bytes.NewReader(body))
		if sign {
			ts = strconv.FormatInt(time.Now().Unix(), 10)
			unix, _ := strconv.ParseInt(ts, 10, 64)
			sig = slackfake.Sign(slackfake.SigningSecret, unix, body)
		}
		req.Header.Set("X-Slack-Signature", sig)
		req.Header.Set("X-Slack-Request-Timestamp", ts)
		req.Header.Set("X-Slack-Retry-Num", retry)
		before := len(host.Events())
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		after := len(host.Events())

		unix, err := strconv.ParseInt(ts, 10, 64)
		valid := err == nil && sig == slackfake.Sign(slackfake.SigningSecret, unix, body) &&
			time.Since(time.Unix(unix, 0)).Abs() <= 5*time.Minute
		if !valid {
			if rec.Code != http.StatusUnauthorized {
				t.Errorf("unsigned request answered %d, want 401", rec.Code)
			}
			if after != before {
				t.Errorf("unsigned request delivered %d events", after-before)
			}
		}
		if rec.Code == http.StatusInternalServerError {
			t.Errorf("answered 500 (a panic?): %s", rec.Body)
		}
	})
}
