package irc

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/test/ircd"
)

func TestEdit_correctionLine(t *testing.T) {
	srv := ircd.Start(t, ircd.Options{})
	hum := startHuman(t, srv, "human")
	cfg := testConfig(srv)
	c, _ := startConnector(t, cfg)
	ctx := context.Background()

	ed := outbound(t, c, bridges.KindEdit, "alice", "hello **world**", 1)
	ed.Target = "libera:out/k0"
	r, err := c.Edit(ctx, ed)
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != "libera:out/k1" {
		t.Errorf("receipt %q, want libera:out/k1 (from the key)", r.ID)
	}
	if r2, err := c.Edit(ctx, ed); err != nil || r2 != r { // a retry: the same receipt
		t.Errorf("retry: %v %v", r2, err)
	}
	// The retry of a key that went out is not posted again (bridges.SentKeys: one
	// post per idempotency key, a rule of the contract's conformance suite).
	if l := hum.next(t, 1)[0]; l != (line{"PRIVMSG", "statusgate", "<alice> * correction: hello \x02world\x02"}) {
		t.Errorf("correction line %q", l)
	}

	// A long correction is shaped and capped at editMaxLines, with the summary.
	long := outbound(t, c, bridges.KindEdit, "alice", strings.Repeat("x", 2000)+"\r\nQUIT :x", 2)
	if _, err := c.Edit(ctx, long); err != nil {
		t.Fatal(err)
	}
	got := hum.next(t, editMaxLines)
	for i, l := range got {
		if !strings.HasPrefix(l.text, "<alice> * correction: ") || strings.ContainsAny(l.text, "\r\n") {
			t.Errorf("line %d: %q", i, l.text)
		}
	}
	if !strings.HasSuffix(got[editMaxLines-1].text, " more lines)") {
		t.Errorf("no summary: %q", got[editMaxLines-1].text)
	}
	hum.quiet(t, 100*time.Millisecond)

	if _, err := c.Edit(ctx, outbound(t, c, bridges.KindMessage, "alice", "x", 3)); !bridges.IsPermanent(err) {
		t.Errorf("Edit of a message: %v, want permanent", err)
	}
}

func TestRun_gapAnnounced(t *testing.T) {
	srv := ircd.Start(t, ircd.Options{})
	cfg := testConfig(srv)
	cfg.Channels = append(cfg.Channels, ChannelConfig{Name: "#other"})
	_, h := startConnector(t, cfg)

	srv.Stop()
	h.WaitState(t, bridges.StateTransientDisconnect)
	if evs := h.Events(); len(evs) != 0 {
		t.Fatalf("events before reconnect: %+v", evs)
	}
	srv.Restart()
	h.WaitState(t, bridges.StateConnected)
	evs := h.WaitEvents(t, 2) // one per channel
	seen := map[bridges.ChannelID]bool{}
	for _, ev := range evs {
		if ev.Kind != bridges.KindNotice || ev.Sender.IsBridge || ev.Sender.ID != "libera:server/127.0.0.1" ||
			ev.Sender.Name != "127.0.0.1" {
			t.Errorf("gap event %+v", ev)
		}
		if !strings.HasPrefix(ev.Text, "The bridge was disconnected from IRC network libera (127.0.0.1) for ") ||
			!strings.HasSuffix(ev.Text, "; messages sent on IRC meanwhile may have been missed.") {
			t.Errorf("text %q", ev.Text)
		}
		seen[ev.Origin.Channel] = true
	}
	if !seen["libera:#status"] || !seen["libera:#other"] {
		t.Errorf("channels %v", seen)
	}

	// Once: a human's line is the next event, no second announcement.
	hum := startHuman(t, srv, "human")
	hum.c.Cmd.Message(testChannel, "back")
	evs = h.WaitEvents(t, 1)
	if len(evs) != 3 || evs[2].Text != "back" {
		t.Errorf("after the announcement: %d events, last %+v", len(evs), evs[len(evs)-1])
	}
}

func TestGapText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		300 * time.Millisecond:                "under a second",
		90*time.Second + 400*time.Millisecond: "1m30s",
	} {
		if got := gapText("libera", "irc.libera.chat", d); !strings.Contains(got, " for "+want+";") ||
			!strings.Contains(got, "libera (irc.libera.chat)") {
			t.Errorf("%s: %q", d, got)
		}
	}
}
