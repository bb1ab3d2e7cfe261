package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/statusgate/statusgate/bridges"
)

func TestSSE_receivesSentEventsInOrder(t *testing.T) {
	cfg := testConfig()
	cfg.Heartbeat = 20 * time.Millisecond
	r := start(t, cfg, nil)
	s := r.openStream(t, "status", "", nil)
	ctx := context.Background()

	msg := outbound("status", "k1", "hello from *Status*")
	msg.ReplyTo = "api:status/earlier"
	rcpt, err := r.c.Send(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	if rcpt.ID != "api:status/k1" {
		t.Errorf("receipt %q, want api:status/k1", rcpt.ID)
	}
	action := outbound("status", "k2", "waves")
	action.Event.Kind = bridges.KindAction
	notice := outbound("status", "k3", "topic changed")
	notice.Event.Kind = bridges.KindNotice
	edit := outbound("status", "k4", "hello again")
	edit.Event.Kind, edit.Event.Target, edit.Target = bridges.KindEdit, "status:0xabck1", "api:status/k1"
	react := outbound("status", "k5", "")
	react.Event.Kind, react.Event.Reaction, react.Target = bridges.KindReaction, "👍", "api:status/k1"
	del := outbound("status", "k6", "")
	del.Event.Kind, del.Target = bridges.KindDelete, "api:status/k1"
	for _, step := range []func() error{
		func() error { _, err := r.c.Send(ctx, action); return err },
		func() error { _, err := r.c.Send(ctx, notice); return err },
		func() error { _, err := r.c.Edit(ctx, edit); return err },
		func() error { _, err := r.c.React(ctx, react); return err },
		func() error { return r.c.Redact(ctx, del) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}

	first := s.next(t)
	if first.id != "1" || first.event != "message" {
		t.Errorf("first frame id %q event %q", first.id, first.event)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(first.data), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"id": "api:status/k1", "kind": "message", "channel": "status",
		"origin": map[string]any{"network": "status", "channel": "status:test", "id": "status:0xabck1"},
		"sender": map[string]any{"id": "status:0x04aa", "name": "Tall Bold Owl"},
		"text":   "hello from *Status*", "reply_to": "api:status/earlier", "target": "", "reaction": "",
		"time": "2024-05-01T12:00:00.123456789Z",
	}
	if g, w := mustJSON(got), mustJSON(want); g != w {
		t.Errorf("data\n%s\nwant\n%s", g, w)
	}
	for i, kind := range []string{"action", "notice", "edit", "reaction", "delete"} {
		ev := s.next(t)
		var w wireEvent
		if err := json.Unmarshal([]byte(ev.data), &w); err != nil {
			t.Fatal(err)
		}
		if ev.id != strconv.Itoa(i+2) || ev.event != kind || w.Kind != kind || w.ID != bridges.RemoteMsgID("api:status/k"+strconv.Itoa(i+2)) {
			t.Errorf("frame %d: id %q event %q kind %q receipt %q", i+2, ev.id, ev.event, w.Kind, w.ID)
		}
		if kind == "edit" || kind == "reaction" || kind == "delete" {
			if w.Target != "api:status/k1" {
				t.Errorf("%s target %q", kind, w.Target)
			}
		}
		if kind == "reaction" && w.Reaction != "👍" {
			t.Errorf("reaction %q", w.Reaction)
		}
	}
	// Idle now: heartbeats.
	timeout := time.After(wait)
	for {
		select {
		case ev := <-s.frames:
			if ev.comment == "ping" {
				return
			}
			t.Fatalf("unexpected frame %+v", ev)
		case <-timeout:
			t.Fatal("no heartbeat")
		}
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestSSE_otherChannelsAndQueryToken(t *testing.T) {
	r := start(t, testConfig(), nil)
	dev := r.openStream(t, "dev", "?access_token="+testToken, map[string]string{"Authorization": ""})
	if _, err := r.c.Send(context.Background(), outbound("status", "s1", "for status")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.c.Send(context.Background(), outbound("dev", "d1", "for dev")); err != nil {
		t.Fatal(err)
	}
	ev := dev.next(t)
	if ev.id != "1" || !strings.Contains(ev.data, `"for dev"`) || !strings.Contains(ev.data, `"api:dev/d1"`) {
		t.Errorf("dev stream got %+v", ev)
	}
	for _, tc := range []struct {
		path string
		auth bool
		want int
	}{
		{"/v1/channels/dev/events?access_token=wrong", false, 401},
		{"/v1/channels/dev/events", false, 401},
		{"/v1/channels/nope/events", true, 404},
		{"/v1/channels/dev/events?last_event_id=abc", true, 400},
		{"/v1/channels/dev/events", true, 0}, // POST: 405
	} {
		method, token := "GET", ""
		if tc.auth {
			token = testToken
		}
		want := tc.want
		if want == 0 {
			method, want = "POST", 405
		}
		if resp := r.do(t, method, tc.path, token, nil); resp.status != want {
			t.Errorf("%s %s: %d, want %d (%s)", method, tc.path, resp.status, want, resp.body)
		}
	}
}

func TestSend_sameKeyPublishesOnce(t *testing.T) {
	cfg := testConfig()
	cfg.Replay = 2
	r := start(t, cfg, nil)
	s := r.openStream(t, "status", "", nil)
	ctx := context.Background()
	send := func(key string) bridges.Receipt {
		t.Helper()
		rcpt, err := r.c.Send(ctx, outbound("status", key, "text of "+key))
		if err != nil {
			t.Fatal(err)
		}
		return rcpt
	}
	a, b := send("k1"), send("k1")
	if a != b || a.ID != "api:status/k1" {
		t.Errorf("receipts %+v and %+v", a, b)
	}
	send("k2")
	if ev := s.next(t); ev.id != "1" || !strings.Contains(ev.data, "text of k1") {
		t.Errorf("frame %+v", ev)
	}
	if ev := s.next(t); ev.id != "2" || !strings.Contains(ev.data, "text of k2") {
		t.Errorf("frame %+v, want k2 as id 2 (k1 published twice?)", ev)
	}
	// Once k1 has left the ring (Replay 2), the same key is published again, with
	// the same receipt.
	send("k3")
	if c := send("k1"); c != a {
		t.Errorf("receipt after eviction %+v, want %+v", c, a)
	}
	if ev := s.next(t); ev.id != "3" {
		t.Errorf("frame %+v", ev)
	}
	if ev := s.next(t); ev.id != "4" || !strings.Contains(ev.data, "text of k1") {
		t.Errorf("frame %+v", ev)
	}
}

func TestSend_rejectsPermanently(t *testing.T) {
	c, err := New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	unknown := outbound("nope", "k", "x")
	otherNet := outbound("status", "k", "x")
	otherNet.Channel = "irc:status"
	badKind := outbound("status", "k", "x")
	badKind.Event.Kind = bridges.KindDelete
	badKey := outbound("status", "k\x00", "x")
	for name, out := range map[string]bridges.Outbound{"unknown channel": unknown, "other network": otherNet, "kind": badKind, "key": badKey} {
		if _, err := c.Send(ctx, out); !bridges.IsPermanent(err) {
			t.Errorf("%s: error %v is not permanent", name, err)
		}
	}
	if _, err := c.Send(ctx, unknown); !errors.Is(err, ErrUnknownChannel) {
		t.Errorf("unknown channel: %v", err)
	}
	if _, err := c.Edit(ctx, outbound("status", "k", "x")); !bridges.IsPermanent(err) {
		t.Errorf("edit without target: %v", err)
	}
	if _, err := c.React(ctx, outbound("status", "k", "")); !bridges.IsPermanent(err) {
		t.Errorf("reaction without target: %v", err)
	}
	if err := c.Redact(ctx, unknown); !bridges.IsPermanent(err) {
		t.Errorf("delete without target: %v", err)
	}
	// Send before Run fails transiently (the bridges contract, checked for every
	// connector by bridgestest): the gateway keeps the event in its outbox until a
	// session serves the stream.
	if _, err := c.Send(ctx, outbound("status", "early", "x")); !errors.Is(err, bridges.ErrTransient) || !errors.Is(err, ErrNotServing) {
		t.Errorf("send before Run: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Send(cancelled, outbound("status", "late", "x")); !errors.Is(err, context.Canceled) || bridges.IsPermanent(err) {
		t.Errorf("send with a cancelled context: %v", err)
	}
}

func TestSSE_resumeAndGap(t *testing.T) {
	cases := []struct {
		name    string
		query   string
		header  map[string]string
		gap     string // data of the gap event, "" for none
		firstID int
	}{
		{name: "within the ring", header: map[string]string{"Last-Event-ID": "3"}, firstID: 4},
		{name: "query parameter", query: "?last_event_id=4", firstID: 5},
		{name: "older than the ring", header: map[string]string{"Last-Event-ID": "1"}, gap: `{"missed_from":2,"missed_to":2}`, firstID: 3},
		{name: "from the start", query: "?last_event_id=0", gap: `{"missed_from":1,"missed_to":2}`, firstID: 3},
		{name: "from before a restart", header: map[string]string{"Last-Event-ID": "99"}, gap: `{"missed_from":100,"reset":true}`, firstID: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Replay = 3
			r := start(t, cfg, nil)
			for i := 1; i <= 5; i++ {
				if _, err := r.c.Send(context.Background(), outbound("status", "k"+strconv.Itoa(i), "m"+strconv.Itoa(i))); err != nil {
					t.Fatal(err)
				}
			}
			s := r.openStream(t, "status", tc.query, tc.header)
			if tc.gap != "" {
				ev := s.next(t)
				if ev.event != "gap" || ev.data != tc.gap || ev.id != "" {
					t.Errorf("gap frame %+v, want data %s and no id", ev, tc.gap)
				}
			}
			for id := tc.firstID; id <= 5; id++ {
				ev := s.next(t)
				if ev.id != strconv.Itoa(id) || !strings.Contains(ev.data, `"m`+strconv.Itoa(id)+`"`) {
					t.Errorf("frame %+v, want id %d", ev, id)
				}
			}
			// Live events follow the replay.
			if _, err := r.c.Send(context.Background(), outbound("status", "live-"+tc.name, "live")); err != nil {
				t.Fatal(err)
			}
			if ev := s.next(t); !strings.Contains(ev.data, `"live"`) {
				t.Errorf("frame %+v, want the live event", ev)
			}
		})
	}
}

func TestSSE_slowSubscriberIsDisconnected(t *testing.T) {
	cfg := testConfig()
	cfg.Replay = 4
	cfg.SubscriberBuffer = 2
	r := start(t, cfg, nil)

	// A client that never reads, behind a queue of two events: the connector must
	// drop it rather than wait for it.
	req, _ := http.NewRequest("GET", r.url+"/v1/channels/status/events", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()

	ch := r.c.chans.Load().byName["status"]
	text := strings.Repeat("a", 60<<10)
	var slowest time.Duration
	sent := 0
	for ch.slowCount() == 0 {
		if sent == 5000 {
			t.Fatalf("still subscribed after %d events of %d bytes", sent, len(text))
		}
		sent++
		begin := time.Now()
		if _, err := r.c.Send(context.Background(), outbound("status", "k"+strconv.Itoa(sent), text)); err != nil {
			t.Fatal(err)
		}
		slowest = max(slowest, time.Since(begin))
	}
	if slowest > time.Second {
		t.Errorf("a Send took %s while a subscriber was stuck", slowest)
	}
	t.Logf("dropped after %d sends; slowest Send %s", sent, slowest)
	for range 10 { // the ring moves on
		sent++
		if _, err := r.c.Send(context.Background(), outbound("status", "k"+strconv.Itoa(sent), "x")); err != nil {
			t.Fatal(err)
		}
	}

	// The stream ends once the client reads what was already written...
	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, resp.Body); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("read the dropped stream: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("the dropped stream did not end")
	}
	// ...and the client resumes from the ring.
	s := r.openStream(t, "status", "", map[string]string{"Last-Event-ID": "1"})
	if ev := s.next(t); ev.event != "gap" {
		t.Errorf("frame %q %q, want a gap", ev.id, ev.event)
	}
	if ev := s.next(t); ev.id != strconv.Itoa(sent-3) {
		t.Errorf("frame id %q, want %d", ev.id, sent-3)
	}
}

func TestSSE_connectBeforeAnything(t *testing.T) {
	r := start(t, testConfig(), nil)
	s := r.openStream(t, "status", "", map[string]string{"Last-Event-ID": "0"})
	if _, err := r.c.Send(context.Background(), outbound("status", "k", "first")); err != nil {
		t.Fatal(err)
	}
	if ev := s.next(t); ev.id != "1" || ev.event != "message" {
		t.Errorf("frame %+v", ev)
	}
}

// TestSSE_replayBoundedByBytes (issue 15 finding 10): with the default bounds, 600
// events of 60 KiB of text each (over 36 MB) are sent to one channel; a client resuming
// from the start gets a gap and at most ReplayBytes (16 MiB) of replayed events, and
// the ring holds no more. Before the fix the ring kept all 600 (it was bounded by
// count only, 10,000 events) and the client got every one of them.
func TestSSE_replayBoundedByBytes(t *testing.T) {
	cfg := testConfig()
	r := start(t, cfg, nil)
	text := strings.Repeat("a", 60<<10)
	const total = 600
	for i := 1; i <= total; i++ {
		if _, err := r.c.Send(context.Background(), outbound("status", "k"+strconv.Itoa(i), text)); err != nil {
			t.Fatal(err)
		}
	}
	s := r.openStream(t, "status", "?last_event_id=0", nil)
	if _, err := r.c.Send(context.Background(), outbound("status", "live", "live")); err != nil {
		t.Fatal(err)
	}
	var replayed, bytes int
	var first sseEvent
	for {
		ev := s.next(t)
		if first.event == "" {
			first = ev
		}
		if strings.Contains(ev.data, `"live"`) {
			break
		}
		if ev.event != "gap" {
			replayed++
			bytes += len(ev.data)
		}
	}
	t.Logf("resumed from the start: %d of %d events replayed, %d bytes; first frame %s %.60s", replayed, total, bytes, first.event, first.data)
	if first.event != "gap" || replayed >= total || bytes > int(DefaultReplayBytes) {
		t.Errorf("replayed %d events, %d bytes (first frame %q): want a gap and at most %d bytes", replayed, bytes, first.event, DefaultReplayBytes)
	}
	if n, b := r.c.chans.Load().byName["status"].kept(); b > DefaultReplayBytes || n != replayed+1 {
		t.Errorf("ring keeps %d events, %d bytes; want %d, ≤ %d", n, b, replayed+1, DefaultReplayBytes)
	}
}
