package slack

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/bridges/bridgestest"
	"github.com/statusgate/statusgate/test/slackfake"
)

// Slack → gateway. The fake (test/slackfake) stands in for Slack: it stores the posts
// and pushes their events over Socket Mode as Slack would.

func TestRun_deliversMessage(t *testing.T) {
	fake := newFake(t)
	r := start(t, testConfig(fake), false)

	ts, env := fake.Post(chGeneral, "U0ALICE", "*bold* _it_ &lt;3 hi <@U0BOB>", "")
	ev := r.host.WaitEvent(t, "message", func(ev bridges.Event) bool { return ev.Kind == bridges.KindMessage })
	fake.WaitAcked(env, wait)

	want := bridges.Event{
		Kind:   bridges.KindMessage,
		Origin: bridges.Origin{Network: "slack", Channel: mustChannel(t, chGeneral), ID: mustMsg(t, chGeneral, ts)},
		Sender: bridges.Sender{ID: "slack:" + slackfake.TeamID + "/U0ALICE", Name: "Alice"},
		Text:   `**bold** *it* \<3 hi @Bob`,
	}
	ev.Time = want.Time
	if ev != want {
		t.Errorf("delivered\n %+v\nwant\n %+v", ev, want)
	}
	if n := r.c.users.len(); n != 2 {
		t.Errorf("user cache holds %d names, want 2 (alice, bob)", n)
	}
}

func TestRun_meMessageThreadEditDelete(t *testing.T) {
	fake := newFake(t)
	r := start(t, testConfig(fake), false)

	root, _ := fake.Post(chGeneral, "U0ALICE", "root", "")
	fake.MeMessage(chGeneral, "U0BOB", "waves")
	reply, _ := fake.Post(chGeneral, "U0BOB", "in thread", root)
	fake.Edit(chGeneral, root, "root, edited")
	env := fake.Delete(chGeneral, reply)

	r.host.Until(t, "five events", func(evs []bridges.Event, _ []bridgestest.StateReport) bool { return len(evs) == 5 })
	fake.WaitAcked(env, wait)
	evs := r.host.Events()

	if ev := evs[1]; ev.Kind != bridges.KindAction || ev.Text != "waves" || ev.Sender.Name != "Bob" {
		t.Errorf("me_message delivered as %+v", ev)
	}
	if ev := evs[2]; ev.Kind != bridges.KindMessage || ev.ReplyTo != mustMsg(t, chGeneral, root) {
		t.Errorf("thread reply delivered as %+v, want ReplyTo %s", ev, mustMsg(t, chGeneral, root))
	}
	edit := evs[3]
	if edit.Kind != bridges.KindEdit || edit.Target != mustMsg(t, chGeneral, root) || edit.Text != "root, edited" || edit.Sender.Name != "Alice" {
		t.Errorf("edit delivered as %+v", edit)
	}
	if edit.Origin.ID == evs[0].Origin.ID {
		t.Errorf("edit has the origin ID of the message it edits")
	}
	if del := evs[4]; del.Kind != bridges.KindDelete || del.Target != mustMsg(t, chGeneral, reply) {
		t.Errorf("delete delivered as %+v", del)
	}
}

func TestRun_ownPostsAreBridgeAndOtherChannelsIgnored(t *testing.T) {
	fake := newFake(t)
	r := start(t, testConfig(fake), false)

	fake.Post(chOther, "U0ALICE", "not served", "")
	rc, err := r.c.Send(context.Background(), statusOutbound(mustChannel(t, chGeneral), bridges.KindMessage, "m1", "from status"))
	if err != nil {
		t.Fatal(err)
	}
	ev := r.host.WaitEvent(t, "echo of our post", func(ev bridges.Event) bool { return ev.Origin.ID == rc.ID })
	if !ev.Sender.IsBridge {
		t.Errorf("echo of our own post delivered without IsBridge: %+v", ev)
	}
	edit := statusOutbound(mustChannel(t, chGeneral), bridges.KindEdit, "m1e", "edited")
	edit.Target = rc.ID
	if _, err := r.c.Edit(context.Background(), edit); err != nil {
		t.Fatal(err)
	}
	if err := r.c.Redact(context.Background(), edit); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []bridges.Kind{bridges.KindEdit, bridges.KindDelete} {
		ev := r.host.WaitEvent(t, "echo of our "+kind.String(), func(ev bridges.Event) bool { return ev.Kind == kind })
		if !ev.Sender.IsBridge || ev.Target != rc.ID {
			t.Errorf("echo of our %s delivered as %+v", kind, ev)
		}
	}
	fake.Post(chGeneral, "U0ALICE", "after", "")
	r.host.WaitEvent(t, "message after", func(ev bridges.Event) bool { return ev.Text == "after" })
	for _, ev := range r.host.Events() {
		if ev.Origin.Channel != mustChannel(t, chGeneral) {
			t.Errorf("delivered an event of an unserved channel: %+v", ev)
		}
	}
}

// A thread reply also sent to the channel is a reply too (FEATURES.md: threads must
// not drop messages).
func TestRun_threadBroadcast(t *testing.T) {
	fake := newFake(t)
	r := start(t, testConfig(fake), false)
	root, _ := fake.Post(chGeneral, "U0ALICE", "root", "")
	env := fake.Inject(map[string]any{
		"type": "message", "subtype": "thread_broadcast", "channel": chGeneral, "user": "U0BOB",
		"text": "also in channel", "ts": "1795423259.000200", "thread_ts": root,
		"root": map[string]any{"ts": root, "text": "root", "user": "U0ALICE"},
	})
	ev := r.host.WaitEvent(t, "broadcast reply", func(ev bridges.Event) bool { return ev.Text == "also in channel" })
	fake.WaitAcked(env, wait)
	if ev.Kind != bridges.KindMessage || ev.ReplyTo != mustMsg(t, chGeneral, root) || ev.Sender.Name != "Bob" {
		t.Errorf("thread_broadcast delivered as %+v", ev)
	}
}

func TestRun_badBotToken(t *testing.T) {
	fake := newFake(t)
	cfg := testConfig(fake)
	cfg.BotToken = "xoxb-wrong"
	r := start(t, cfg, true)
	r.host.WaitState(t, bridges.StateBadCredentials)
	// It keeps retrying slowly rather than returning.
	r.host.Until(t, "a second attempt", func(_ []bridges.Event, states []bridgestest.StateReport) bool {
		n := 0
		for _, s := range states {
			if s.State == bridges.StateBadCredentials {
				n++
			}
		}
		return n >= 2
	})
	if _, err := r.c.Send(context.Background(), statusOutbound(mustChannel(t, chGeneral), bridges.KindMessage, "m", "x")); !errors.Is(err, bridges.ErrTransient) {
		t.Errorf("Send while not connected: %v, want ErrTransient", err)
	}
}

func TestRun_badAppToken(t *testing.T) {
	fake := newFake(t)
	cfg := testConfig(fake)
	cfg.AppToken = "xapp-wrong"
	r := start(t, cfg, true)
	r.host.WaitState(t, bridges.StateBadCredentials)
}

// A restart mid-stream loses nothing and duplicates nothing: envelopes are acked only
// after Deliver, and the fake, like Slack, re-sends unacked envelopes on the next
// connection (Slack retries them; the fake re-sends them at once).
func TestRun_restartMidStream(t *testing.T) {
	fake := newFake(t)
	cfg := testConfig(fake)
	r1 := start(t, cfg, false)
	_, env1 := fake.Post(chGeneral, "U0ALICE", "one", "")
	r1.host.WaitEvent(t, "one", func(ev bridges.Event) bool { return ev.Text == "one" })
	fake.WaitAcked(env1, wait)

	// The gateway fails to persist "two" until Run stops: it is never acked.
	var failing atomic.Bool
	failing.Store(true)
	r1.host.SetDeliver(func(ctx context.Context, ev bridges.Event) error {
		if failing.Load() {
			return errors.New("store unavailable")
		}
		return nil
	})
	_, env2 := fake.Post(chGeneral, "U0ALICE", "two", "")
	r1.stop()
	failing.Store(false)
	if fake.Acked(env2) {
		t.Fatal("envelope acked although Deliver failed")
	}
	_, env3 := fake.Post(chGeneral, "U0BOB", "three", "") // while no connector runs

	r2 := start(t, cfg, false)
	fake.WaitAcked(env2, wait)
	fake.WaitAcked(env3, wait)
	r2.host.Until(t, "two and three", func(evs []bridges.Event, _ []bridgestest.StateReport) bool { return len(evs) >= 2 })
	var texts []string
	for _, ev := range r2.host.Events() {
		texts = append(texts, ev.Text)
	}
	if len(texts) != 2 || texts[0] != "two" || texts[1] != "three" {
		t.Errorf("after restart delivered %q, want [two three]", texts)
	}
}

func TestRun_reconnectsAfterDrop(t *testing.T) {
	fake := newFake(t)
	r := start(t, testConfig(fake), false)
	fake.DisconnectAll()
	r.host.Until(t, "disconnect and reconnect", func(_ []bridges.Event, states []bridgestest.StateReport) bool {
		n := len(states)
		return n >= 2 && states[n-2].State == bridges.StateTransientDisconnect && states[n-1].State == bridges.StateConnected
	})
	if n := fake.ConnectionsOpened(); n != 2 {
		t.Errorf("fake saw %d connections, want 2", n)
	}
	_, env := fake.Post(chGeneral, "U0ALICE", "after drop", "")
	r.host.WaitEvent(t, "message after drop", func(ev bridges.Event) bool { return ev.Text == "after drop" })
	fake.WaitAcked(env, wait)
}
