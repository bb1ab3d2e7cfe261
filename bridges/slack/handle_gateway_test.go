package slack

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/statusgate/statusgate/bridges"
)

// Gateway → Slack, checked in the fake's channel history.

func TestSend_postsAsAuthor(t *testing.T) {
	fake := newFake(t)
	cfg := testConfig(fake)
	cfg.IconURLBase = "https://bridge.example/identicon/"
	r := start(t, cfg, false)
	ch := mustChannel(t, chGeneral)

	out := statusOutbound(ch, bridges.KindMessage, "m1", "**hi** *there* `a<b` [docs](https://x.y/?a=1&b=2) 1 < 2 & 3")
	rc, err := r.c.Send(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	h := fake.History(chGeneral)
	if len(h) != 1 {
		t.Fatalf("history holds %d messages, want 1", len(h))
	}
	m := h[0]
	if rc.ID != mustMsg(t, chGeneral, m.TS) {
		t.Errorf("receipt %s, want %s", rc.ID, mustMsg(t, chGeneral, m.TS))
	}
	if m.Username != "Carol" || m.IconURL != "https://bridge.example/identicon/status:0x04abcdef" {
		t.Errorf("posted as %q with icon %q", m.Username, m.IconURL)
	}
	if want := "*hi* _there_ `a&lt;b` <https://x.y/?a=1&amp;b=2|docs> 1 &lt; 2 &amp; 3"; m.Text != want {
		t.Errorf("text %q, want %q", m.Text, want)
	}
	var md slack.SlackMetadata
	if err := json.Unmarshal(m.Metadata, &md); err != nil || md.EventType != metadataEvent || md.EventPayload["key"] != out.Key {
		t.Errorf("metadata %s (%v), want the key %s", m.Metadata, err, out.Key)
	}

	action := statusOutbound(ch, bridges.KindAction, "m2", "waves")
	if _, err := r.c.Send(context.Background(), action); err != nil {
		t.Fatal(err)
	}
	if h := fake.History(chGeneral); h[1].Text != "_Carol waves_" {
		t.Errorf("action posted as %q", h[1].Text)
	}
}

func TestSend_threadEditRedact(t *testing.T) {
	fake := newFake(t)
	r := start(t, testConfig(fake), false)
	ctx := context.Background()
	ch := mustChannel(t, chGeneral)

	rootTS, _ := fake.Post(chGeneral, "U0ALICE", "question", "")
	reply := statusOutbound(ch, bridges.KindMessage, "m1", "answer")
	reply.ReplyTo = mustMsg(t, chGeneral, rootTS)
	rc, err := r.c.Send(ctx, reply)
	if err != nil {
		t.Fatal(err)
	}
	h := fake.History(chGeneral)
	if got := h[len(h)-1]; got.ThreadTS != rootTS {
		t.Errorf("reply posted with thread_ts %q, want %q", got.ThreadTS, rootTS)
	}

	edit := statusOutbound(ch, bridges.KindEdit, "m1e", "answer, **edited**")
	edit.Target = rc.ID
	erc, err := r.c.Edit(ctx, edit)
	if err != nil {
		t.Fatal(err)
	}
	if erc.ID != rc.ID {
		t.Errorf("edit receipt %s, want %s", erc.ID, rc.ID)
	}
	h = fake.History(chGeneral)
	if got := h[len(h)-1]; got.Text != "answer, *edited*" || !got.Edited {
		t.Errorf("after edit: %+v", got)
	}

	del := statusOutbound(ch, bridges.KindDelete, "m1d", "")
	del.Target = rc.ID
	if err := r.c.Redact(ctx, del); err != nil {
		t.Fatal(err)
	}
	h = fake.History(chGeneral)
	if got := h[len(h)-1]; !got.Deleted {
		t.Errorf("after redact: %+v", got)
	}
	if err := r.c.Redact(ctx, del); err != nil {
		t.Errorf("redact of a message already gone: %v, want nil", err)
	}
	// Someone else's message cannot be edited: permanent.
	other := statusOutbound(ch, bridges.KindEdit, "x", "x")
	other.Target = mustMsg(t, chGeneral, rootTS)
	if _, err := r.c.Edit(ctx, other); !bridges.IsPermanent(err) {
		t.Errorf("edit of a user's message: %v, want permanent", err)
	}
}

func TestSend_badDestination(t *testing.T) {
	fake := newFake(t)
	r := start(t, testConfig(fake), false)
	for _, ch := range []bridges.ChannelID{mustChannel(t, chOther), "api:status"} {
		if _, err := r.c.Send(context.Background(), statusOutbound(ch, bridges.KindMessage, "m", "x")); !bridges.IsPermanent(err) {
			t.Errorf("Send to %s: %v, want permanent", ch, err)
		}
	}
	if len(fake.History(chOther)) != 0 {
		t.Errorf("posted to an unserved channel")
	}
}

// The fake answers 429 twice; the gateway retries the same Outbound (here: the loop)
// and the message is posted exactly once, each retry after Retry-After.
func TestSend_retryAfter429(t *testing.T) {
	fake := newFake(t)
	r := start(t, testConfig(fake), false)
	fake.RateLimit(2, 1)
	out := statusOutbound(mustChannel(t, chGeneral), bridges.KindMessage, "m1", "hello")

	began := time.Now()
	var attempts int
	for {
		attempts++
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // the gateway's attempt deadline
		_, err := r.c.Send(ctx, out)
		cancel()
		if err == nil {
			break
		}
		if !errors.Is(err, bridges.ErrTransient) || bridges.IsPermanent(err) {
			t.Fatalf("attempt %d: %v, want a transient error", attempts, err)
		}
		if attempts == 5 {
			t.Fatal("still failing after 5 attempts")
		}
	}
	if attempts != 3 {
		t.Errorf("posted after %d attempts, want 3", attempts)
	}
	if took := time.Since(began); took < 2*time.Second {
		t.Errorf("three attempts took %s; two Retry-After: 1 should take 2s", took)
	}
	if h := fake.History(chGeneral); len(h) != 1 || fake.Posts() != 1 {
		t.Errorf("posted %d times, history %d, want 1", fake.Posts(), len(h))
	}
	if !strings.Contains(r.host.Logs(), "retry_after=1s") {
		t.Errorf("Retry-After not logged")
	}
}

// A full token bucket blocks Send (backpressure) until ctx ends; nothing is dropped.
func TestSend_rateLimitBlocks(t *testing.T) {
	fake := newFake(t)
	cfg := testConfig(fake)
	cfg.RatePerChannel, cfg.Burst = 4, 1
	r := start(t, cfg, false)
	ch := mustChannel(t, chGeneral)

	began := time.Now()
	for i := range 3 {
		if _, err := r.c.Send(context.Background(), statusOutbound(ch, bridges.KindMessage, string(rune('a'+i)), "x")); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(began); took < 400*time.Millisecond {
		t.Errorf("3 sends at 4/s with burst 1 took %s, want ≥ 500ms", took)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := r.c.Send(ctx, statusOutbound(ch, bridges.KindMessage, "d", "x")); !errors.Is(err, bridges.ErrTransient) {
		t.Errorf("Send with the bucket empty and a short deadline: %v, want transient", err)
	}
	// The other channel has its own bucket.
	if _, err := r.c.Send(context.Background(), statusOutbound(mustChannel(t, chDev), bridges.KindMessage, "e", "x")); err != nil {
		t.Fatal(err)
	}
	if n := len(fake.History(chGeneral)); n != 3 {
		t.Errorf("history holds %d messages, want 3", n)
	}
}

// dropReply is a transport that lets the first chat.postMessage reach the server and
// then reports a lost connection, as when the reply is lost on the way back.
type dropReply struct {
	dropped atomic.Bool
}

func (d *dropReply) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil && strings.HasSuffix(req.URL.Path, "/chat.postMessage") && d.dropped.CompareAndSwap(false, true) {
		resp.Body.Close()
		return nil, errors.New("connection reset by peer")
	}
	return resp, err
}

// A retry after a lost reply finds the first post by its key in the message metadata
// and does not post again.
func TestSend_retryAfterLostReplyDoesNotDuplicate(t *testing.T) {
	fake := newFake(t)
	cfg := testConfig(fake)
	r := start(t, cfg, false)
	r.c.api = slack.New(cfg.BotToken, slack.OptionAPIURL(cfg.APIURL),
		slack.OptionHTTPClient(&http.Client{Transport: new(dropReply)}))
	out := statusOutbound(mustChannel(t, chGeneral), bridges.KindMessage, "m1", "once")

	if _, err := r.c.Send(context.Background(), out); !errors.Is(err, bridges.ErrTransient) {
		t.Fatalf("first attempt: %v, want transient", err)
	}
	rc, err := r.c.Send(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	h := fake.History(chGeneral)
	if len(h) != 1 || fake.Posts() != 1 {
		t.Fatalf("posted %d times, want 1", fake.Posts())
	}
	if rc.ID != mustMsg(t, chGeneral, h[0].TS) {
		t.Errorf("receipt %s, want the first post's %s", rc.ID, mustMsg(t, chGeneral, h[0].TS))
	}
}
