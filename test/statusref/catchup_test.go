package statusref

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/core/mailserver"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/status"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/test/statusnet"
)

// skewClock is the time now plus an offset the test moves forward: the one clock of our
// node and its SDK client, for an outage that lasts longer than it really does.
type skewClock struct{ off atomic.Int64 }

func (c *skewClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *skewClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// TestCatchUp_afterOutageFromStatusGo (issue 16 follow-up): a chat's own catch-up (what
// the gateway reads through) asks status-go v0.70.1's WhisperMailServer again after an
// outage. Our node loses its only peer, status-go (disconnected; 2 min pass on our
// clock), while status-go's mailserver archives 20 messages of the chat; when status-go
// is back, the chat fetches them from it and delivers each once, and not again the
// message it had before the outage, which the range fetched holds too.
func TestCatchUp_afterOutageFromStatusGo(t *testing.T) {
	const room = "outage-catch-up"
	sg := Start(t, Options{Mailserver: true})
	sgID, err := enode.ParseID(sg.ID())
	if err != nil {
		t.Fatal(err)
	}
	sym, _ := chat.PublicChatKey(room)
	bob, _ := crypto.GenerateKey()
	envelope := func(text string, at time.Time) []byte {
		payload, err := chat.Encode(&chat.Message{Clock: uint64(at.UnixMilli()), Timestamp: uint64(at.UnixMilli()),
			Text: text, ChatID: room, MessageType: chat.MessageTypePublicGroup, ContentType: chat.ContentTextPlain},
			chat.FormatProtobuf, bob)
		if err != nil {
			t.Fatal(err)
		}
		env, err := whisper.Wrap(&whisper.MessageParams{Topic: chat.PublicChatTopic(room), KeySym: sym, Src: bob,
			Payload: payload, TTL: 15, Clock: func() time.Time { return at }})
		if err != nil {
			t.Fatal(err)
		}
		return env.Bytes()
	}
	// Before the outage: in status-go's archive, and delivered by the catch-up at join.
	if err := sg.MsArchive([][]byte{envelope("before the outage", time.Now().Add(-time.Minute))}); err != nil {
		t.Fatal(err)
	}

	clk := &skewClock{}
	nodeKey, _ := crypto.GenerateKey()
	mc, err := mailserver.NewClient(mailserver.ClientConfig{NodeKey: nodeKey})
	if err != nil {
		t.Fatal(err)
	}
	ours := statusnet.NewNode(t, node.Config{Whisper: whisper.Config{Completions: mc, Clock: clk.Now}})
	if err := ours.AddPeer(sg.Enode(), true); err != nil {
		t.Fatal(err)
	}
	statusnet.WaitPeer(t, ours, sgID)
	synced := make(chan error, 1)
	outageSynced := make(chan error, 4)
	client, err := status.New(ours, status.Config{Clock: clk.Now, History: status.HistoryConfig{Client: mc, Window: time.Hour,
		Mailservers:  func() (trusted, found []string) { return []string{sg.Enode()}, nil },
		Synced:       func(_ string, err error) { synced <- err },
		OutageSynced: func(_ string, _ whisper.Outage, err error) { outageSynced <- err }}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := client.Join(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ch.Leave)
	seen := map[string]bool{}
	collect := func(n int) {
		t.Helper()
		for len(seen) < n {
			select {
			case m := <-ch.Messages():
				if seen[m.Text] {
					t.Fatalf("%q twice", m.Text)
				}
				seen[m.Text] = true
			case <-time.After(wait):
				t.Fatalf("got %d of %d messages", len(seen), n)
			}
		}
	}
	collect(1)
	if err := <-synced; err != nil {
		t.Fatalf("catch-up at join: %v", err)
	}

	// The outage.
	if err := ours.RemovePeer(sg.Enode()); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(wait)
	for changed := ours.PeersChanged(); ours.Peer(sgID) != nil; changed = ours.PeersChanged() {
		select {
		case <-changed:
		case <-deadline:
			t.Fatal("status-go still connected")
		}
	}
	missed := make([][]byte, 20)
	for i := range missed {
		missed[i] = envelope(fmt.Sprintf("during the outage %d", i), time.Now())
	}
	if err := sg.MsArchive(missed); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	// Status-go dials us (we dialled it last: geth's dialer waits 35 s before that again).
	if err := sg.AddPeer(ours.Enode()); err != nil {
		t.Fatal(err)
	}
	collect(21)
	select {
	case err := <-outageSynced:
		if err != nil {
			t.Fatalf("catch-up after the outage: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("no catch-up after the outage")
	}
	select {
	case m := <-ch.Messages():
		t.Fatalf("extra message %q", m.Text)
	default:
	}
	if st := client.Stats(); st.Delivered != 21 {
		t.Errorf("stats %+v: want 21 delivered", st)
	}
}
