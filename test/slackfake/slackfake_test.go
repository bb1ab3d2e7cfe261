package slackfake

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
)

func post(t *testing.T, s *Server, method, token string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.APIURL()+method, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&v)
	return resp.StatusCode, v
}

func dial(t *testing.T, s *Server) *websocket.Conn {
	t.Helper()
	_, v := post(t, s, "apps.connections.open", AppToken, nil)
	c, _, err := websocket.DefaultDialer.Dial(v["url"].(string), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var hello map[string]any
	if err := c.ReadJSON(&hello); err != nil || hello["type"] != "hello" {
		t.Fatalf("no hello: %v %v", hello, err)
	}
	return c
}

func TestServer_uniqueTS(t *testing.T) {
	s := New(t, "C1")
	seen := map[string]bool{}
	for range 100 {
		_, v := post(t, s, "chat.postMessage", BotToken, url.Values{"channel": {"C1"}, "text": {"x"}})
		ts := v["ts"].(string)
		if seen[ts] {
			t.Fatalf("ts %s handed out twice", ts)
		}
		seen[ts] = true
	}
}

func TestServer_authAnd429(t *testing.T) {
	s := New(t, "C1")
	if _, v := post(t, s, "auth.test", "xoxb-wrong", nil); v["error"] != "invalid_auth" {
		t.Errorf("bad token: %v", v)
	}
	if _, v := post(t, s, "apps.connections.open", BotToken, nil); v["error"] != "invalid_auth" {
		t.Errorf("bot token on apps.connections.open: %v", v)
	}
	s.RateLimit(1, 2)
	if code, _ := post(t, s, "chat.postMessage", BotToken, url.Values{"channel": {"C1"}, "text": {"x"}}); code != http.StatusTooManyRequests {
		t.Errorf("status %d, want 429", code)
	}
	if _, v := post(t, s, "chat.postMessage", BotToken, url.Values{"channel": {"C1"}, "text": {"x"}}); v["ok"] != true {
		t.Errorf("after the 429: %v", v)
	}
	if s.Posts() != 1 || len(s.History("C1")) != 1 {
		t.Errorf("posts %d, history %d", s.Posts(), len(s.History("C1")))
	}
}

// Injected events reach every connection; an unacked envelope is re-sent to a new one.
func TestServer_broadcastAndRedelivery(t *testing.T) {
	s := New(t, "C1")
	a, b := dial(t, s), dial(t, s)
	_, env := s.Post("C1", "U1", "hi", "")
	for _, c := range []*websocket.Conn{a, b} {
		var e map[string]any
		if err := c.ReadJSON(&e); err != nil || e["envelope_id"] != env {
			t.Fatalf("envelope %v %v, want %s", e, err, env)
		}
	}
	a.Close()
	b.Close()
	c := dial(t, s)
	var e map[string]any
	if err := c.ReadJSON(&e); err != nil || e["envelope_id"] != env {
		t.Fatalf("unacked envelope not re-sent: %v %v", e, err)
	}
	if err := c.WriteJSON(map[string]string{"envelope_id": env}); err != nil {
		t.Fatal(err)
	}
	s.WaitAcked(env, 10*time.Second)
	d := dial(t, s)
	_, env2 := s.Post("C1", "U1", "again", "")
	if err := d.ReadJSON(&e); err != nil || e["envelope_id"] != env2 {
		t.Fatalf("after the ack the next envelope is %v (%v), want %s", e["envelope_id"], err, env2)
	}
}

// Sign matches the example of Slack's "Verifying requests from Slack" page and
// slack-go's verifier.
func TestSign(t *testing.T) {
	body := []byte("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
	const want = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
	if got := Sign("8f742231b10e8888abcd99yyyzzz85a5", 1531420618, body); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
	req, err := SignedRequest("http://127.0.0.1/", SigningSecret, time.Now(), Callback("Ev1", map[string]any{"type": "message"}), 2)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := slack.NewSecretsVerifier(req.Header, SigningSecret)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(req.Body)
	_, _ = sv.Write(data)
	if err := sv.Ensure(); err != nil {
		t.Errorf("slack-go refuses the signature: %v", err)
	}
	if req.Header.Get("X-Slack-Retry-Num") != "2" {
		t.Errorf("retry header %q", req.Header.Get("X-Slack-Retry-Num"))
	}
}
