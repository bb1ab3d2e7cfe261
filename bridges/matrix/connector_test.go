package matrix

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/test/homeserver"
)

// TestConnector_dendrite runs the connector against a real Dendrite (test/homeserver)
// with a real human account (a mautrix.Client registered with m.login.dummy). The
// in-test host (testHost) stands in for the gateway. Subtests share the server and run
// in order.
func TestConnector_dendrite(t *testing.T) {
	r := newRig(t)
	alice := homeserver.UserID("alice")
	wantAlice := func(t *testing.T, ev bridges.Event) {
		t.Helper()
		if ev.Sender.ID != bridges.RemoteUserID("matrix:"+alice) || ev.Sender.Name != "Alice Human" || ev.Sender.IsBridge {
			t.Errorf("sender = %+v, want matrix:%s named Alice Human", ev.Sender, alice)
		}
		if ev.Origin.Channel != "matrix:dev" || ev.Origin.Network != "matrix" {
			t.Errorf("origin = %+v", ev.Origin)
		}
	}
	txnURL := "http://" + r.cfg.Listen + "/_matrix/app/v1/transactions/"
	put := func(t *testing.T, txn, token string, body []byte) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPut, txnURL+txn, bytes.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e struct{ Errcode string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e.Errcode
	}

	var aliceMsg id.EventID

	t.Run("human_text_html", func(t *testing.T) {
		resp, err := r.human.SendMessageEvent(ctxT(t), r.room, event.EventMessage, &event.MessageEventContent{
			MsgType: event.MsgText, Body: "hi **there** <script>",
			Format: event.FormatHTML, FormattedBody: `hi <b>there</b> <script>alert(1)</script><img src=x onerror=y> <a href="javascript:x">j</a>`,
		})
		if err != nil {
			t.Fatal(err)
		}
		aliceMsg = resp.EventID
		ev := r.host.Next(t)
		wantAlice(t, ev)
		if ev.Kind != bridges.KindMessage || ev.Text != "hi **there** alert(1) j" || ev.Origin.ID != bridges.RemoteMsgID("matrix:"+resp.EventID) {
			t.Errorf("event = %+v", ev)
		}
	})

	t.Run("human_emote", func(t *testing.T) {
		if _, err := r.human.SendMessageEvent(ctxT(t), r.room, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgEmote, Body: "waves *"}); err != nil {
			t.Fatal(err)
		}
		ev := r.host.Next(t)
		wantAlice(t, ev)
		if ev.Kind != bridges.KindAction || ev.Text != `waves \*` {
			t.Errorf("event = %+v", ev)
		}
	})

	var ghostMsg id.EventID
	t.Run("send_as_ghost", func(t *testing.T) {
		out := outbound(t, bridges.KindMessage, "status:0x04abcdef", "Bob Status", "hello <script>alert(1)</script> **bold** [x](https://example.org/a?b=1&c=2)", "k-send-1")
		rc, err := r.c.Send(ctxT(t), out)
		if err != nil {
			t.Fatal(err)
		}
		ghostMsg = eventID("matrix", rc.ID)
		ev, err := r.getEvent(ctxT(t), r.room, ghostMsg)
		if err != nil {
			t.Fatal(err)
		}
		ghost := id.NewUserID(ghostLocalpart("status_", "status:0x04abcdef"), "localhost")
		if ev.Sender != ghost {
			t.Errorf("sender = %s, want ghost %s", ev.Sender, ghost)
		}
		_ = ev.Content.ParseRaw(ev.Type)
		m := ev.Content.AsMessage()
		if strings.Contains(m.FormattedBody, "<script") || !strings.Contains(m.FormattedBody, "&lt;script&gt;") ||
			!strings.Contains(m.FormattedBody, "<strong>bold</strong>") ||
			!strings.Contains(m.FormattedBody, `<a href="https://example.org/a?b=1&amp;c=2">x</a>`) {
			t.Errorf("formatted_body = %q", m.FormattedBody)
		}
		if m.Body != "hello <script>alert(1)</script> bold x (https://example.org/a?b=1&c=2)" {
			t.Errorf("body = %q", m.Body)
		}
		name, err := r.human.GetDisplayName(ctxT(t), ghost)
		if err != nil || name.DisplayName != "Bob Status" {
			t.Errorf("ghost display name = %+v, %v", name, err)
		}
		var member event.MemberEventContent
		if err := r.human.StateEvent(ctxT(t), r.room, event.StateMember, ghost.String(), &member); err != nil || member.Membership != event.MembershipJoin {
			t.Errorf("ghost membership = %+v, %v", member, err)
		}
	})

	t.Run("same_key_one_event", func(t *testing.T) {
		out := outbound(t, bridges.KindMessage, "status:0x04abcdef", "Bob Status", "once", "k-idem-1")
		a, err := r.c.Send(ctxT(t), out)
		if err != nil {
			t.Fatal(err)
		}
		b, err := r.c.Send(ctxT(t), out)
		if err != nil {
			t.Fatal(err)
		}
		if a.ID != b.ID || a.ID == "" {
			t.Errorf("retry with the same key: %s then %s, want one event", a.ID, b.ID)
		}
	})

	t.Run("display_name_change_and_notice", func(t *testing.T) {
		out := outbound(t, bridges.KindNotice, "status:0x04abcdef", "Bob Renamed", "note", "k-notice-1")
		rc, err := r.c.Send(ctxT(t), out)
		if err != nil {
			t.Fatal(err)
		}
		ghost := id.NewUserID(ghostLocalpart("status_", "status:0x04abcdef"), "localhost")
		if name, err := r.human.GetDisplayName(ctxT(t), ghost); err != nil || name.DisplayName != "Bob Renamed" {
			t.Errorf("display name = %+v, %v", name, err)
		}
		ev, err := r.getEvent(ctxT(t), r.room, eventID("matrix", rc.ID))
		if err != nil {
			t.Fatal(err)
		}
		_ = ev.Content.ParseRaw(ev.Type)
		if m := ev.Content.AsMessage(); m.MsgType != event.MsgNotice {
			t.Errorf("msgtype = %s", m.MsgType)
		}
	})

	t.Run("reply_round_trip", func(t *testing.T) {
		// Status → Matrix: a reply to alice's message.
		out := outbound(t, bridges.KindAction, "status:0x04abcdef", "Bob Renamed", "agrees", "k-reply-1")
		out.ReplyTo = bridges.RemoteMsgID("matrix:" + aliceMsg)
		rc, err := r.c.Send(ctxT(t), out)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := r.getEvent(ctxT(t), r.room, eventID("matrix", rc.ID))
		if err != nil {
			t.Fatal(err)
		}
		_ = ev.Content.ParseRaw(ev.Type)
		m := ev.Content.AsMessage()
		if m.MsgType != event.MsgEmote || m.RelatesTo == nil || m.RelatesTo.InReplyTo == nil || m.RelatesTo.InReplyTo.EventID != aliceMsg {
			t.Errorf("reply content = %+v", m)
		}
		// Matrix → Status: alice answers the ghost's message, with a reply fallback.
		_, err = r.human.SendMessageEvent(ctxT(t), r.room, event.EventMessage, &event.MessageEventContent{
			MsgType: event.MsgText, Body: "> <@status_x:localhost> hello\n\nyes!",
			Format: event.FormatHTML, FormattedBody: "<mx-reply><blockquote>hello</blockquote></mx-reply>yes!",
			RelatesTo: &event.RelatesTo{InReplyTo: &event.InReplyTo{EventID: ghostMsg}},
		})
		if err != nil {
			t.Fatal(err)
		}
		got := r.host.Next(t) // the ghost's own messages above were not delivered
		wantAlice(t, got)
		if got.Kind != bridges.KindMessage || got.Text != "yes!" || got.ReplyTo != bridges.RemoteMsgID("matrix:"+ghostMsg) {
			t.Errorf("event = %+v", got)
		}
	})

	t.Run("human_edit_and_redaction", func(t *testing.T) {
		_, err := r.human.SendMessageEvent(ctxT(t), r.room, event.EventMessage, &event.MessageEventContent{
			MsgType: event.MsgText, Body: "* fixed", NewContent: &event.MessageEventContent{MsgType: event.MsgText, Body: "fixed"},
			RelatesTo: &event.RelatesTo{Type: event.RelReplace, EventID: aliceMsg},
		})
		if err != nil {
			t.Fatal(err)
		}
		ev := r.host.Next(t)
		wantAlice(t, ev)
		if ev.Kind != bridges.KindEdit || ev.Text != "fixed" || ev.Target != bridges.RemoteMsgID("matrix:"+aliceMsg) {
			t.Errorf("edit = %+v", ev)
		}
		// Dendrite v0.15.2 does not push m.room.redaction events to application
		// services (checked: none arrives), so the redaction enters as the
		// transaction a homeserver that does would send, with the right hs_token.
		if _, err := r.human.RedactEvent(ctxT(t), r.room, aliceMsg); err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(map[string]any{"events": []any{map[string]any{
			"type": "m.room.redaction", "event_id": "$redaction-" + string(aliceMsg[1:]), "room_id": r.room, "sender": alice,
			"redacts": aliceMsg, "origin_server_ts": time.Now().UnixMilli(), "content": map[string]any{"redacts": aliceMsg},
		}}})
		if code, _ := put(t, "redaction-1", r.cfg.HSToken, body); code != http.StatusOK {
			t.Fatalf("put redaction: %d", code)
		}
		ev = r.host.Next(t)
		wantAlice(t, ev)
		if ev.Kind != bridges.KindDelete || ev.Target != bridges.RemoteMsgID("matrix:"+aliceMsg) {
			t.Errorf("delete = %+v", ev)
		}
	})

	t.Run("gateway_edit_and_redact", func(t *testing.T) {
		out := outbound(t, bridges.KindEdit, "status:0x04abcdef", "Bob Renamed", "hello *again*", "k-edit-1")
		out.Target = bridges.RemoteMsgID("matrix:" + ghostMsg)
		rc, err := r.c.Edit(ctxT(t), out)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := r.getEvent(ctxT(t), r.room, eventID("matrix", rc.ID))
		if err != nil {
			t.Fatal(err)
		}
		_ = ev.Content.ParseRaw(ev.Type)
		m := ev.Content.AsMessage()
		if m.RelatesTo == nil || m.RelatesTo.Type != event.RelReplace || m.RelatesTo.EventID != ghostMsg ||
			m.NewContent == nil || m.NewContent.FormattedBody != "<p>hello <em>again</em></p>" {
			t.Errorf("edit content = %+v", m)
		}
		del := outbound(t, bridges.KindDelete, "status:0x04abcdef", "Bob Renamed", "", "k-del-1")
		del.Target = out.Target
		if err := r.c.Redact(ctxT(t), del); err != nil {
			t.Fatal(err)
		}
		// Dendrite applies a redaction to the stored event asynchronously; wait for
		// it with a deadline (the only signal the client API gives).
		deadline := time.Now().Add(10 * time.Second)
		for {
			red, err := r.getEvent(ctxT(t), r.room, ghostMsg)
			if err != nil {
				t.Fatal(err)
			}
			if red.Unsigned.RedactedBecause != nil || len(red.Content.VeryRaw) <= 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("not redacted after 10 s: %s", red.Content.VeryRaw)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := r.c.Redact(ctxT(t), del); err != nil { // again: already gone is success
			t.Errorf("second redact: %v", err)
		}
	})

	t.Run("unknown_channel_permanent", func(t *testing.T) {
		out := outbound(t, bridges.KindMessage, "status:0x04abcdef", "Bob", "x", "k-unknown")
		out.Channel = "matrix:nope"
		if _, err := r.c.Send(ctxT(t), out); !bridges.IsPermanent(err) {
			t.Errorf("err = %v, want permanent", err)
		}
	})

	t.Run("hs_token_checked", func(t *testing.T) {
		for _, tok := range []string{"", "wrong", r.cfg.ASToken} {
			if code, errcode := put(t, "bad-"+tok, tok, []byte(`{"events":[]}`)); code != http.StatusForbidden || errcode != "M_FORBIDDEN" {
				t.Errorf("token %q: %d %s, want 403 M_FORBIDDEN", tok, code, errcode)
			}
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+r.cfg.Listen+"/_matrix/app/v1/users/@status_x:localhost?access_token=nope", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("user query with a wrong token: %d", resp.StatusCode)
		}
	})

	t.Run("txn_replay_idempotent", func(t *testing.T) {
		evID := fmt.Sprintf("$replay%d", time.Now().UnixNano())
		body, _ := json.Marshal(map[string]any{"events": []any{map[string]any{
			"type": "m.room.message", "event_id": evID, "room_id": r.room, "sender": alice,
			"origin_server_ts": time.Now().UnixMilli(), "content": map[string]any{"msgtype": "m.text", "body": "replayed"},
		}}})
		for i := 0; i < 3; i++ {
			if code, _ := put(t, "replay-1", r.cfg.HSToken, body); code != http.StatusOK {
				t.Fatalf("put %d: %d", i, code)
			}
		}
		ev := r.host.Next(t)
		if ev.Text != "replayed" || ev.Origin.ID != bridges.RemoteMsgID("matrix:"+evID) {
			t.Errorf("event = %+v", ev)
		}
		// A marker through the homeserver: the next delivered event must be it, not a
		// second copy of the replayed one.
		if _, err := r.human.SendText(ctxT(t), r.room, "marker"); err != nil {
			t.Fatal(err)
		}
		if ev := r.host.Next(t); ev.Text != "marker" {
			t.Errorf("after replays got %+v, want the marker", ev)
		}
	})

	t.Run("connector_restart_redelivery", func(t *testing.T) {
		r.stop()
		// While the connector is down, alice speaks; the homeserver keeps the
		// transaction and redelivers it to the new connector.
		if _, err := r.human.SendText(ctxT(t), r.room, "while down"); err != nil {
			t.Fatal(err)
		}
		r.start(t)
		ev := r.host.Next(t)
		if ev.Text != "while down" {
			t.Fatalf("after restart got %+v", ev)
		}
		if _, err := r.human.SendText(ctxT(t), r.room, "after restart"); err != nil {
			t.Fatal(err)
		}
		if ev := r.host.Next(t); ev.Text != "after restart" {
			t.Errorf("got %+v, want no duplicate before 'after restart'", ev)
		}
		// The ghost still works after the restart (registration and membership are
		// idempotent).
		if _, err := r.c.Send(ctxT(t), outbound(t, bridges.KindMessage, "status:0x04abcdef", "Bob Renamed", "back", "k-after-restart")); err != nil {
			t.Fatal(err)
		}
	})
	_ = mautrix.MForbidden
}
