package statusref

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/statusgate/statusgate/core/whisper"
)

// TestStatusGo_eagerBurstKeepsPeer: our node forwards eagerly (a packet as soon as
// envelopes are pooled, coalesced within the window and the packet budget); under a
// burst of 2,000 envelopes offered in one second, status-go v0.70.1 keeps the connection
// and its Messenger receives every public-chat message among them. One envelope in ten
// is a chat message, the rest are envelopes of another topic that status-go's full node
// pools but its Messenger does not read (it handles about 40 messages a second).
func TestStatusGo_eagerBurstKeepsPeer(t *testing.T) {
	const (
		total   = 2000
		chats   = total / 10
		perTick = 10
		tick    = 5 * time.Millisecond // perTick every tick: 2,000 envelopes per second
	)
	ref := Start(t, Options{})
	u := newUs(t)
	link(t, u, ref)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := u.client.Join(ctx, publicChat)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Leave()
	if err := ref.JoinPublic(publicChat); err != nil {
		t.Fatal(err)
	}

	// Seal first (held by our transport), then offer the envelopes at the burst's pace.
	u.tr.hold()
	for i := range chats {
		if _, err := ch.Send(ctx, fmt.Sprint("burst ", i), u.key); err != nil {
			t.Fatal(err)
		}
	}
	u.tr.mu.Lock()
	all := u.tr.held
	u.tr.held, u.tr.holding = nil, false
	u.tr.mu.Unlock()
	// Only the chat's envelopes: the held ones may include our contact-code
	// advertisement, which Direct publishes once at start on its own topic.
	chatTopic := whisper.TopicFromName(publicChat)
	var msgs []*whisper.Envelope
	for _, env := range all {
		if env.Topic() == chatTopic {
			msgs = append(msgs, env)
		}
	}
	if len(msgs) != chats {
		t.Fatalf("%d envelopes sealed, want %d", len(msgs), chats)
	}
	filler := whisper.TopicFromName("statusgate-burst-filler")
	fillKey, err := whisper.SymKeyFromPassword("statusgate-burst-filler")
	if err != nil {
		t.Fatal(err)
	}
	held := make([]*whisper.Envelope, 0, total)
	for i := range total {
		if i%10 == 0 {
			held = append(held, msgs[i/10])
			continue
		}
		env, err := whisper.Wrap(&whisper.MessageParams{Topic: filler, KeySym: fillKey, Src: u.key,
			Payload: []byte(fmt.Sprint("filler ", i)), TTL: 60, PoW: 0.002, WorkTime: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, env)
	}
	sent := make(chan error, 1)
	start := time.Now()
	go func() {
		pace := time.NewTicker(tick)
		defer pace.Stop()
		for i := 0; i < total; i += perTick {
			for _, env := range held[i:min(i+perTick, total)] {
				if err := u.nd.Whisper().Send(env); err != nil {
					sent <- err
					return
				}
			}
			<-pace.C
		}
		sent <- nil
	}()

	got := map[string]bool{}
	deadline := time.After(2 * wait)
	for len(got) < chats {
		select {
		case m := <-ref.Messages():
			got[m.Text] = true
		case ev := <-ref.PeerEvents():
			if ev.Event == "drop" {
				t.Fatalf("status-go dropped us after %d messages: %+v", len(got), ev)
			}
		case <-deadline:
			t.Fatalf("status-go received %d of %d messages", len(got), chats)
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	for i := range chats {
		if !got[fmt.Sprint("burst ", i)] {
			t.Fatalf("status-go did not receive message %d", i)
		}
	}
	peers, err := ref.Peers()
	if err != nil {
		t.Fatal(err)
	}
	if len(peers) != 1 || peers[0] != u.nd.ID().String() {
		t.Fatalf("status-go peers %v after the burst, want us", peers)
	}
	for _, p := range u.nd.Peers() {
		t.Logf("status-go received %d messages in %v; we sent %d envelopes in %d packets", chats,
			time.Since(start).Round(time.Millisecond), p.Sent, p.Packets)
	}
}
