// Package slackfake is a small, stateful fake of the Slack Web API and of Socket Mode,
// for the tests of bridges/slack. Slack is a hosted service: there is no server to run
// on loopback, and slack-go's slacktest is stateless (no history, edits, deletes or
// 429s, one-second ts that collide, one websocket client per message; TEST-SERVERS.md
// §3). This package is the stand-in. It must be imported only by _test.go files.
//
// What is faked, on an httptest server on 127.0.0.1 (APIURL is what slack.OptionAPIURL
// takes):
//
//   - auth.test: the bot token answers team TeamID, user BotUserID, bot BotID; any
//     other token answers invalid_auth.
//   - apps.connections.open (app token only, else invalid_auth) and a Socket Mode
//     websocket: it sends hello, then every injected event as an events_api envelope
//     to every open connection, records the acks, and re-sends envelopes that no
//     connection acked to each new connection (Slack retries unacked events). It pings
//     every second, as Slack does, so slack-go's ping watchdog stays quiet.
//   - chat.postMessage (channel, text, username, icon_url, thread_ts, metadata),
//     chat.update, chat.delete, conversations.history (newest first, with metadata),
//     users.info. Every message gets a unique "sec.micro" ts. The bot's posts, edits
//     and deletes are echoed over Socket Mode (message with its bot_id,
//     message_changed, message_deleted), as Slack does.
//   - 429 with Retry-After on demand (RateLimit), for chat.postMessage.
//
// For the Events API over HTTP, which Slack drives by POSTing to the app, there is
// nothing to serve: SignedRequest and PostEvent build and send the request as Slack
// does (Callback payload, v0 HMAC-SHA256 signature with SigningSecret, retry
// headers) to the connector's endpoint.
//
// Not faked: scopes, files, reactions,
// conversations.replies, pagination, message length limits, mrkdwn rendering.
package slackfake

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Fixed identities of the fake workspace.
const (
	BotToken  = "xoxb-fake-bot-token"
	AppToken  = "xapp-fake-app-token"
	TeamID    = "T0FAKE"
	BotUserID = "U0BOT"
	BotID     = "B0BOT"
	// SigningSecret is the fake app's signing secret, for the Events API over HTTP.
	SigningSecret = "8f742231b10e8888abcd99fakefake5a"
)

// Message is one message as the fake stores it.
type Message struct {
	Channel   string
	TS        string
	User      string // the author's user ID (BotUserID for the bot's posts)
	BotID     string // set on the bot's posts
	Username  string // chat.postMessage username override
	IconURL   string // chat.postMessage icon_url override
	Text      string
	ThreadTS  string
	Subtype   string
	Metadata  json.RawMessage // chat.postMessage metadata, as posted
	Edited    bool
	Deleted   bool
	Timestamp time.Time
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	t   testing.TB
	srv *httptest.Server

	mu        sync.Mutex
	clock     time.Time // last ts handed out; strictly increasing
	channels  map[string][]*Message
	users     map[string]string // id → display name
	limit429  int               // answer the next limit429 posts with 429
	retryAft  int               // Retry-After seconds of those 429s
	posts     int               // chat.postMessage calls answered 200
	conns     map[*wsConn]bool
	pending   []envelope // injected, not acked yet
	acked     map[string]bool
	ackSig    chan struct{} // closed and replaced on every ack
	envSeq    int
	connCount int
	down      bool          // SetDown: every request answers 503
	stored    chan struct{} // closed and replaced on every stored message
}

type envelope struct {
	id   string
	data []byte
}

type wsConn struct {
	mu sync.Mutex // serialises writes (gorilla allows one writer)
	c  *websocket.Conn
}

func (w *wsConn) write(data []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return w.c.WriteMessage(websocket.TextMessage, data)
}

// New starts a fake with the given channel IDs on 127.0.0.1:0 and closes it when the
// test ends.
func New(t testing.TB, channels ...string) *Server {
	s := &Server{
		t:        t,
		clock:    time.Now(),
		channels: make(map[string][]*Message),
		users:    make(map[string]string),
		conns:    make(map[*wsConn]bool),
		acked:    make(map[string]bool),
		ackSig:   make(chan struct{}),
		stored:   make(chan struct{}),
	}
	for _, ch := range channels {
		s.channels[ch] = nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/auth.test", s.authTest)
	mux.HandleFunc("/api/apps.connections.open", s.connectionsOpen)
	mux.HandleFunc("/api/chat.postMessage", s.postMessage)
	mux.HandleFunc("/api/chat.update", s.update)
	mux.HandleFunc("/api/chat.delete", s.delete)
	mux.HandleFunc("/api/conversations.history", s.history)
	mux.HandleFunc("/api/users.info", s.usersInfo)
	mux.HandleFunc("/ws", s.websocket)
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		down := s.down
		s.mu.Unlock()
		if down {
			http.Error(w, "slackfake: down", http.StatusServiceUnavailable)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// APIURL is the Web API base URL, for slack.OptionAPIURL.
func (s *Server) APIURL() string { return s.srv.URL + "/api/" }

// Close disconnects every websocket and stops the server.
func (s *Server) Close() {
	s.DisconnectAll()
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// AddUser makes users.info know user id with display name name.
func (s *Server) AddUser(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[id] = name
}

// RateLimit makes the next n chat.postMessage calls answer 429 with Retry-After
// retryAfter seconds, and post nothing.
func (s *Server) RateLimit(n, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limit429, s.retryAft = n, retryAfter
}

// Posts returns how many chat.postMessage calls succeeded.
func (s *Server) Posts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.posts
}

// History returns the messages of channel, oldest first, deleted ones included, as
// copies.
func (s *Server) History(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, 0, len(s.channels[channel]))
	for _, m := range s.channels[channel] {
		out = append(out, *m)
	}
	return out
}

// Connections returns how many Socket Mode websockets are open.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// ConnectionsOpened returns how many Socket Mode websockets were ever opened.
func (s *Server) ConnectionsOpened() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connCount
}

// DisconnectAll closes every Socket Mode websocket, as a network failure would.
func (s *Server) DisconnectAll() {
	s.mu.Lock()
	conns := make([]*wsConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.c.Close()
	}
}

// SetDown starts (true) or ends an outage: while down, every Web API call and
// websocket upgrade answers 503, and SetDown(true) closes the open websockets, as
// Slack's being unreachable would look to a client.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
	if down {
		s.DisconnectAll()
	}
}

// WaitHistory waits until cond holds for channel's messages (History), failing the
// test after timeout, and returns them.
func (s *Server) WaitHistory(channel string, cond func([]Message) bool, timeout time.Duration) []Message {
	s.t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		sig := s.stored
		s.mu.Unlock()
		if h := s.History(channel); cond(h) {
			return h
		}
		select {
		case <-sig:
		case <-deadline:
			s.t.Fatalf("slackfake: channel %s: no such history within %s", channel, timeout)
		}
	}
}

// WaitAcked waits until envelope id is acked, failing the test after timeout.
func (s *Server) WaitAcked(id string, timeout time.Duration) {
	s.t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		ok, sig := s.acked[id], s.ackSig
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-sig:
		case <-deadline:
			s.t.Fatalf("slackfake: envelope %s not acked within %s", id, timeout)
		}
	}
}

// Acked reports whether envelope id was acked.
func (s *Server) Acked(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked[id]
}

// nextTS returns a unique, increasing "sec.micro" ts. Called with s.mu held.
func (s *Server) nextTS() (string, time.Time) {
	now := time.Now()
	if !now.After(s.clock) {
		now = s.clock.Add(time.Microsecond)
	}
	now = now.Truncate(time.Microsecond)
	s.clock = now
	return fmt.Sprintf("%d.%06d", now.Unix(), now.Nanosecond()/1000), now
}

// Post stores a message by user in channel (a thread reply when threadTS is set) and
// injects its message event; it returns the message's ts and the envelope ID.
func (s *Server) Post(channel, user, text, threadTS string) (ts, envelopeID string) {
	s.mu.Lock()
	m := s.store(channel, &Message{User: user, Text: text, ThreadTS: threadTS})
	ev := messageEvent(m)
	s.mu.Unlock()
	return m.TS, s.Inject(ev)
}

// MeMessage is Post for a /me message (subtype me_message).
func (s *Server) MeMessage(channel, user, text string) (ts, envelopeID string) {
	s.mu.Lock()
	m := s.store(channel, &Message{User: user, Text: text, Subtype: "me_message"})
	ev := messageEvent(m)
	s.mu.Unlock()
	return m.TS, s.Inject(ev)
}

// Edit changes the text of message ts in channel as its author and injects the
// message_changed event; it returns the envelope ID.
func (s *Server) Edit(channel, ts, text string) string {
	s.mu.Lock()
	m := s.find(channel, ts)
	if m == nil {
		s.mu.Unlock()
		s.t.Fatalf("slackfake: Edit: no message %s in %s", ts, channel)
		return ""
	}
	prev := messageEvent(m)
	m.Text, m.Edited = text, true
	ev := s.changedEvent(m, prev)
	s.mu.Unlock()
	return s.Inject(ev)
}

// Delete removes message ts in channel and injects the message_deleted event; it
// returns the envelope ID.
func (s *Server) Delete(channel, ts string) string {
	s.mu.Lock()
	m := s.find(channel, ts)
	if m == nil {
		s.mu.Unlock()
		s.t.Fatalf("slackfake: Delete: no message %s in %s", ts, channel)
		return ""
	}
	m.Deleted = true
	ev := s.deletedEvent(m)
	s.mu.Unlock()
	return s.Inject(ev)
}

// Inject sends the inner event ev as an events_api envelope to every open Socket Mode
// connection (and to later ones until acked); it returns the envelope ID.
func (s *Server) Inject(ev map[string]any) string {
	s.mu.Lock()
	s.envSeq++
	id := fmt.Sprintf("env-%06d", s.envSeq)
	data, err := json.Marshal(map[string]any{
		"envelope_id": id, "type": "events_api", "accepts_response_payload": false,
		"retry_attempt": 0, "retry_reason": "",
		"payload": json.RawMessage(Callback("Ev"+id, ev)),
	})
	if err != nil {
		s.mu.Unlock()
		s.t.Fatalf("slackfake: marshal envelope: %v", err)
	}
	s.pending = append(s.pending, envelope{id, data})
	conns := make([]*wsConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.write(data) // a failed connection is closed by its reader
	}
	return id
}

// changedEvent is the message_changed event of m, whose event before the change was
// prev. Called with s.mu held.
func (s *Server) changedEvent(m *Message, prev map[string]any) map[string]any {
	evTS, _ := s.nextTS()
	inner := messageEvent(m)
	inner["edited"] = map[string]any{"user": m.User, "ts": evTS}
	return map[string]any{
		"type": "message", "subtype": "message_changed", "channel": m.Channel, "hidden": true,
		"ts": evTS, "event_ts": evTS, "message": inner, "previous_message": prev,
	}
}

// deletedEvent is the message_deleted event of m. Called with s.mu held.
func (s *Server) deletedEvent(m *Message) map[string]any {
	evTS, _ := s.nextTS()
	return map[string]any{
		"type": "message", "subtype": "message_deleted", "channel": m.Channel, "hidden": true,
		"ts": evTS, "event_ts": evTS, "deleted_ts": m.TS, "previous_message": messageEvent(m),
	}
}

// store assigns m a ts in channel and appends it. Called with s.mu held.
func (s *Server) store(channel string, m *Message) *Message {
	m.Channel = channel
	m.TS, m.Timestamp = s.nextTS()
	s.channels[channel] = append(s.channels[channel], m)
	close(s.stored)
	s.stored = make(chan struct{})
	return m
}

// find returns message ts of channel, or nil. Called with s.mu held.
func (s *Server) find(channel, ts string) *Message {
	for _, m := range s.channels[channel] {
		if m.TS == ts {
			return m
		}
	}
	return nil
}

// messageEvent is the Slack message event (or history entry) for m.
func messageEvent(m *Message) map[string]any {
	ev := map[string]any{
		"type": "message", "channel": m.Channel, "ts": m.TS, "event_ts": m.TS,
		"text": m.Text, "channel_type": "channel",
	}
	if m.User != "" {
		ev["user"] = m.User
	}
	if m.BotID != "" {
		ev["bot_id"] = m.BotID
		ev["subtype"] = "bot_message"
	}
	if m.Subtype != "" {
		ev["subtype"] = m.Subtype
	}
	if m.Username != "" {
		ev["username"] = m.Username
	}
	if m.IconURL != "" {
		ev["icons"] = map[string]any{"image_48": m.IconURL}
	}
	if m.ThreadTS != "" {
		ev["thread_ts"] = m.ThreadTS
	}
	if len(m.Metadata) > 0 {
		ev["metadata"] = m.Metadata
	}
	return ev
}

// token returns the request's token, from the Authorization header or the form.
func token(r *http.Request) string {
	if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return t
	}
	return r.FormValue("token")
}

func reply(w http.ResponseWriter, v map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	if _, ok := v["ok"]; !ok {
		v["ok"] = true
	}
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, code string) {
	reply(w, map[string]any{"ok": false, "error": code})
}

// botAuth parses the form and checks the bot token, answering invalid_auth if wrong.
func botAuth(w http.ResponseWriter, r *http.Request) bool {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return false
	}
	if token(r) != BotToken {
		fail(w, "invalid_auth")
		return false
	}
	return true
}

func (s *Server) authTest(w http.ResponseWriter, r *http.Request) {
	if !botAuth(w, r) {
		return
	}
	reply(w, map[string]any{"url": "https://fake.slack.com/", "team": "fake", "user": "bridge",
		"team_id": TeamID, "user_id": BotUserID, "bot_id": BotID})
}

func (s *Server) connectionsOpen(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	if token(r) != AppToken {
		fail(w, "invalid_auth")
		return
	}
	reply(w, map[string]any{"url": "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/ws"})
}

func (s *Server) postMessage(w http.ResponseWriter, r *http.Request) {
	if !botAuth(w, r) {
		return
	}
	s.mu.Lock()
	if s.limit429 > 0 {
		s.limit429--
		retry := s.retryAft
		s.mu.Unlock()
		w.Header().Set("Retry-After", strconv.Itoa(retry))
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"ok":false,"error":"ratelimited"}`))
		return
	}
	ch := r.FormValue("channel")
	if _, ok := s.channels[ch]; !ok {
		s.mu.Unlock()
		fail(w, "channel_not_found")
		return
	}
	thread := r.FormValue("thread_ts")
	if thread != "" && s.find(ch, thread) == nil {
		s.mu.Unlock()
		fail(w, "thread_not_found")
		return
	}
	m := s.store(ch, &Message{
		User: BotUserID, BotID: BotID, Username: r.FormValue("username"), IconURL: r.FormValue("icon_url"),
		Text: r.FormValue("text"), ThreadTS: thread,
	})
	if md := r.FormValue("metadata"); md != "" {
		m.Metadata = json.RawMessage(md)
	}
	s.posts++
	ev := messageEvent(m)
	s.mu.Unlock()
	reply(w, map[string]any{"channel": ch, "ts": m.TS, "message": ev})
	s.Inject(ev)
}

func (s *Server) update(w http.ResponseWriter, r *http.Request) {
	if !botAuth(w, r) {
		return
	}
	ch, ts := r.FormValue("channel"), r.FormValue("ts")
	s.mu.Lock()
	m := s.find(ch, ts)
	switch {
	case m == nil || m.Deleted:
		s.mu.Unlock()
		fail(w, "message_not_found")
		return
	case m.BotID != BotID:
		s.mu.Unlock()
		fail(w, "cant_update_message")
		return
	}
	prev := messageEvent(m)
	m.Text, m.Edited = r.FormValue("text"), true
	ev := s.changedEvent(m, prev)
	s.mu.Unlock()
	reply(w, map[string]any{"channel": ch, "ts": ts, "text": m.Text})
	s.Inject(ev)
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	if !botAuth(w, r) {
		return
	}
	ch, ts := r.FormValue("channel"), r.FormValue("ts")
	s.mu.Lock()
	m := s.find(ch, ts)
	switch {
	case m == nil || m.Deleted:
		s.mu.Unlock()
		fail(w, "message_not_found")
		return
	case m.BotID != BotID:
		s.mu.Unlock()
		fail(w, "cant_delete_message")
		return
	}
	m.Deleted = true
	ev := s.deletedEvent(m)
	s.mu.Unlock()
	reply(w, map[string]any{"channel": ch, "ts": ts})
	s.Inject(ev)
}

func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	if !botAuth(w, r) {
		return
	}
	ch := r.FormValue("channel")
	limit, _ := strconv.Atoi(r.FormValue("limit"))
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	s.mu.Lock()
	msgs, ok := s.channels[ch]
	if !ok {
		s.mu.Unlock()
		fail(w, "channel_not_found")
		return
	}
	var out []map[string]any
	for i := len(msgs) - 1; i >= 0 && len(out) < limit; i-- {
		if !msgs[i].Deleted {
			out = append(out, messageEvent(msgs[i]))
		}
	}
	s.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i]["ts"].(string) > out[j]["ts"].(string) })
	reply(w, map[string]any{"messages": out, "has_more": false})
}

func (s *Server) usersInfo(w http.ResponseWriter, r *http.Request) {
	if !botAuth(w, r) {
		return
	}
	id := r.FormValue("user")
	s.mu.Lock()
	name, ok := s.users[id]
	s.mu.Unlock()
	if !ok {
		fail(w, "user_not_found")
		return
	}
	reply(w, map[string]any{"user": map[string]any{
		"id": id, "team_id": TeamID, "name": strings.ToLower(name),
		"profile": map[string]any{"display_name": name, "real_name": name},
	}})
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// websocket serves one Socket Mode connection: hello, the pending envelopes, then
// whatever Inject broadcasts; it reads acks until the connection closes.
func (s *Server) websocket(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	conn := &wsConn{c: c}
	s.mu.Lock()
	s.conns[conn] = true
	s.connCount++
	n := len(s.conns)
	pending := make([][]byte, 0, len(s.pending))
	for _, e := range s.pending {
		pending = append(pending, e.data)
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
		_ = c.Close()
	}()

	hello, _ := json.Marshal(map[string]any{"type": "hello", "num_connections": n,
		"connection_info": map[string]any{"app_id": "A0FAKE"}})
	if conn.write(hello) != nil {
		return
	}
	for _, data := range pending {
		if conn.write(data) != nil {
			return
		}
	}
	done := make(chan struct{})
	defer close(done)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() { // pinger: Slack pings; slack-go reconnects without pings
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				conn.mu.Lock()
				err := c.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(5*time.Second))
				conn.mu.Unlock()
				if err != nil {
					return
				}
			}
		}
	}()
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			return
		}
		var ack struct {
			EnvelopeID string `json:"envelope_id"`
		}
		if json.Unmarshal(data, &ack) != nil || ack.EnvelopeID == "" {
			continue
		}
		s.mu.Lock()
		s.acked[ack.EnvelopeID] = true
		for i, e := range s.pending {
			if e.id == ack.EnvelopeID {
				s.pending = append(s.pending[:i], s.pending[i+1:]...)
				break
			}
		}
		close(s.ackSig)
		s.ackSig = make(chan struct{})
		s.mu.Unlock()
	}
}

// Callback returns the event_callback payload carrying the inner event ev with event
// ID eventID, as Slack POSTs it to a Request URL (and wraps it in a Socket Mode
// envelope).
func Callback(eventID string, ev map[string]any) []byte {
	data, err := json.Marshal(map[string]any{
		"token": "verification-token-unused", "team_id": TeamID, "api_app_id": "A0FAKE",
		"type": "event_callback", "event_id": eventID, "event_time": time.Now().Unix(),
		"event": ev, "authorizations": []map[string]any{{"team_id": TeamID, "user_id": BotUserID, "is_bot": true}},
	})
	if err != nil {
		panic("slackfake: marshal callback: " + err.Error()) // ev is built by tests
	}
	return data
}

// Sign returns the X-Slack-Signature of body sent at Unix time ts under secret, as
// Slack computes it: "v0=" + hex(HMAC-SHA256(secret, "v0:<ts>:<body>")).
func Sign(secret string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%d:", ts)
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// SignedRequest is a POST of body to url as Slack sends it: JSON, signed with secret
// at time at, and, when retry > 0, marked as Slack's retry number retry.
func SignedRequest(url, secret string, at time.Time, body []byte, retry int) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Slackbot 1.0 (+https://api.slack.com/robots)")
	req.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(at.Unix(), 10))
	req.Header.Set("X-Slack-Signature", Sign(secret, at.Unix(), body))
	if retry > 0 {
		req.Header.Set("X-Slack-Retry-Num", strconv.Itoa(retry))
		req.Header.Set("X-Slack-Retry-Reason", "http_error")
	}
	return req, nil
}

// PostEvent sends SignedRequest(url, secret, time.Now(), body, retry) and returns the
// status code and the response body. Slack gives up on an answer after 3 s; this waits
// up to 30 s, so that slow answers show up as test failures rather than retries.
func PostEvent(url, secret string, body []byte, retry int) (int, []byte, error) {
	req, err := SignedRequest(url, secret, time.Now(), body, retry)
	if err != nil {
		return 0, nil, err
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, data, err
}

// Store stores a message by user in channel (a thread reply when threadTS is set)
// without sending any event, and returns its message event, for a test to POST as a
// Callback; ts is ev["ts"].
func (s *Server) Store(channel, user, text, threadTS string) (ev map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return messageEvent(s.store(channel, &Message{User: user, Text: text, ThreadTS: threadTS}))
}
