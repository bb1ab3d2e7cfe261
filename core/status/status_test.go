package status_test

import (
	"context"
	"crypto/ecdsa"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/status"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/identity"
	"github.com/statusgate/statusgate/test/statusnet"
)

func key(t testing.TB, seed string) *ecdsa.PrivateKey {
	t.Helper()
	k, err := crypto.ToECDSA(crypto.Keccak256([]byte(seed)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// pair is two connected nodes, each with a client joined to #status.
func pair(t *testing.T) (a, b *node.Node, chatA, chatB *status.Chat, clientB *status.Client) {
	t.Helper()
	nodes := statusnet.NewNodes(t, 2, node.Config{})
	statusnet.Connect(t, nodes[0], nodes[1])
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ca, err := status.New(nodes[0], status.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cb, err := status.New(nodes[1], status.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if chatA, err = ca.Join(ctx, "status"); err != nil {
		t.Fatal(err)
	}
	if chatB, err = cb.Join(ctx, "status"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(chatA.Leave)
	t.Cleanup(chatB.Leave)
	return nodes[0], nodes[1], chatA, chatB, cb
}

func next(t *testing.T, ch *status.Chat) *status.Message {
	t.Helper()
	select {
	case m, ok := <-ch.Messages():
		if !ok {
			t.Fatal("chat closed")
		}
		return m
	case <-time.After(15 * time.Second):
		t.Fatal("no message within 15 s")
		return nil
	}
}

func TestChat_sendAndReceiveOnceInBothFormats(t *testing.T) {
	_, _, chatA, chatB, clientB := pair(t)
	alice := key(t, "alice")
	ids, err := chatA.Send(context.Background(), "hello from alice", alice)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 {
		t.Fatalf("sent %d payloads, want 2 (transit and protobuf)", len(ids))
	}
	m := next(t, chatB)
	if m.Text != "hello from alice" || !m.Author.Equal(&alice.PublicKey) || m.Chat != "status" ||
		m.AuthorKey != identity.ChatKey(&alice.PublicKey) || m.Alias != identity.NewNamer(nil).Name(&alice.PublicKey) {
		t.Fatalf("got %+v", m)
	}
	// Whichever generation the workers opened first is shown; its twin is suppressed.
	if !(m.ID == ids[0] && m.Format == chat.FormatTransit) && !(m.ID == ids[1] && m.Format == chat.FormatProtobuf) {
		t.Fatalf("delivered id %v (%v), sent %v", m.ID, m.Format, ids)
	}
	// The protobuf twin is suppressed; a second message proves nothing else came first.
	if _, err := chatA.Send(context.Background(), "second", alice); err != nil {
		t.Fatal(err)
	}
	if m := next(t, chatB); m.Text != "second" {
		t.Fatalf("got %q, want the second message (the twin must be suppressed)", m.Text)
	}
	// The second message's twin may still be on its way.
	deadline := time.Now().Add(15 * time.Second)
	for clientB.Stats().Dropped[status.DropDuplicate] < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := clientB.Stats(); st.Delivered != 2 || st.Dropped[status.DropDuplicate] != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestChat_dropsBadInput(t *testing.T) {
	a, _, _, chatB, clientB := pair(t)
	ctx := context.Background()
	topic := chat.PublicChatTopic("status")
	sym, err := chat.PublicChatKey("status")
	if err != nil {
		t.Fatal(err)
	}
	mallory := key(t, "mallory")
	post := func(payload []byte, src *ecdsa.PrivateKey) {
		t.Helper()
		if _, err := a.Post(ctx, &whisper.MessageParams{Topic: topic, KeySym: sym, Src: src, Payload: payload,
			TTL: 15, PoW: 0.002, WorkTime: 5 * time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	encode := func(m *chat.Message) []byte {
		t.Helper()
		p, err := chat.Encode(m, chat.FormatTransit, mallory)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	now := uint64(time.Now().UnixMilli())
	good := &chat.Message{Clock: now, Timestamp: now, Text: "fine", ChatID: "status",
		MessageType: chat.MessageTypePublicGroup, ContentType: chat.ContentTextPlain}
	wrongChat := *good
	wrongChat.ChatID, wrongChat.Text = "other", "wrong chat"
	future := *good
	future.Clock, future.Text = chat.ClockCap(time.Now())*2, "from the far future"

	post(encode(good), nil)                                   // unsigned
	post([]byte(`["~#c4",["broken"`), mallory)                // undecodable
	post([]byte(`{"not":"transit"}`), mallory)                // undecodable
	post(encode(&wrongChat), mallory)                         // wrong chat
	post([]byte(`["~#c6",["n","i","a",null,null]]`), mallory) // unsupported record
	long := strings.Repeat("x", chat.MaxTextLength+1)
	post([]byte(`["~#c4",["`+long+`","text/plain","~:public-group-user-message",1,1,["^ ","~:chat-id","status","~:text","`+long+`"]]]`), mallory) // oversize text: undecodable
	wrongKey, err := whisper.SymKeyFromPassword("not-status")
	if err != nil {
		t.Fatal(err)
	}
	// Wrong chat key: the filter cannot open it, so it never reaches the stream.
	if _, err := a.Post(ctx, &whisper.MessageParams{Topic: topic, KeySym: wrongKey, Src: mallory, Payload: encode(good),
		TTL: 15, PoW: 0.002, WorkTime: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	post(encode(good), mallory)    // delivered
	post(encode(&future), mallory) // delivered, clock capped

	got := map[string]*status.Message{}
	for len(got) < 2 {
		m := next(t, chatB)
		got[m.Text] = m
	}
	if got["fine"] == nil || got["from the far future"] == nil || !got["from the far future"].ClockCapped {
		t.Fatalf("delivered %v", got)
	}
	// A marker behind everything above.
	post(encode(&chat.Message{Clock: now + 1, Timestamp: now, Text: "marker", ChatID: "status",
		MessageType: chat.MessageTypePublicGroup, ContentType: chat.ContentTextPlain}), mallory)
	if m := next(t, chatB); m.Text != "marker" {
		t.Fatalf("got %q", m.Text)
	}
	st := clientB.Stats()
	want := map[string]uint64{status.DropUnsigned: 1, status.DropUndecodable: 3, status.DropWrongChat: 1, status.DropUnsupported: 1, status.DropDuplicate: 0}
	for reason, n := range want {
		if st.Dropped[reason] != n {
			t.Errorf("dropped[%s] = %d, want %d (all: %v)", reason, st.Dropped[reason], n, st.Dropped)
		}
	}
	if st.Capped != 1 || st.Delivered != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestConfig_specLimits(t *testing.T) {
	for _, c := range []status.Config{{TTL: 9}, {PoW: 0.003}, {PoW: -1}} {
		if _, err := status.New(noTransport{}, c); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
}

type noTransport struct{}

func (noTransport) Subscribe(whisper.Filter) (*whisper.Subscription, error) { return nil, nil }
func (noTransport) Post(context.Context, *whisper.MessageParams) (*whisper.Envelope, error) {
	return nil, nil
}

// TestChat_sendMessageFixedClockIsIdempotent: sending the same Outgoing twice (a retry
// after a crash) gives the same message ids, so a receiving client shows it once; the
// reply link travels.
func TestChat_sendMessageFixedClockIsIdempotent(t *testing.T) {
	_, _, chatA, chatB, _ := pair(t)
	alice := key(t, "alice")
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	m := status.Outgoing{Text: "once", Clock: chatA.NextClock(at), Timestamp: at,
		ResponseTo: "0x" + strings.Repeat("ab", 32)}
	first, err := chatA.SendMessage(context.Background(), m, alice)
	if err != nil {
		t.Fatal(err)
	}
	again, err := chatA.SendMessage(context.Background(), m, alice)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 2 || first[0] != again[0] || first[1] != again[1] {
		t.Fatalf("ids differ across sends: %v vs %v", first, again)
	}
	other, err := chatA.SendMessage(context.Background(), status.Outgoing{Text: "once"}, alice)
	if err != nil {
		t.Fatal(err)
	}
	if other[0] == first[0] {
		t.Fatal("a fresh send reused the fixed clock's id")
	}
	got := next(t, chatB)
	if got.Text != "once" || got.Clock != m.Clock || got.ResponseTo != m.ResponseTo || !got.Timestamp.Equal(at) {
		t.Fatalf("got %+v", got)
	}
	if second := next(t, chatB); second.ID == got.ID || second.Clock == m.Clock {
		t.Fatalf("the retried send was delivered again: %+v", second)
	}
}

// A chat joined with OmitLocal does not deliver what its node posted (the node's
// Whisper service never hands it over), knows the twin of what it sent as if it had read
// it, and delivers everything else; the other node's reader gets the post as usual.
func TestChat_omitLocal(t *testing.T) {
	nodes := statusnet.NewNodes(t, 2, node.Config{})
	statusnet.Connect(t, nodes[0], nodes[1])
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ca, err := status.New(nodes[0], status.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cb, err := status.New(nodes[1], status.Config{})
	if err != nil {
		t.Fatal(err)
	}
	chatA, err := ca.Join(ctx, "status", status.JoinOptions{OmitLocal: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(chatA.Leave)
	chatB, err := cb.Join(ctx, "status")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(chatB.Leave)

	alice, bob := key(t, "alice"), key(t, "bob")
	at := time.Now().Truncate(time.Millisecond)
	out := status.Outgoing{Text: "mine", Clock: chatA.NextClock(at), Timestamp: at}
	ids, err := chatA.SendMessage(ctx, out, alice)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if twin, ok := chatA.TwinOf(id.String()); !ok || twin != out.TwinID(&alice.PublicKey) {
			t.Fatalf("TwinOf(%v) = %v, %v; want the sent message's twin", id, twin, ok)
		}
	}
	if m := next(t, chatB); m.Text != "mine" {
		t.Fatalf("node B got %q, want the post", m.Text)
	}
	if _, err := chatB.Send(ctx, "yours", bob); err != nil {
		t.Fatal(err)
	}
	if m := next(t, chatA); m.Text != "yours" || !m.Author.Equal(&bob.PublicKey) {
		t.Fatalf("chat A got %q by %v first, want bob's message (its own post is left out)", m.Text, m.AuthorKey)
	}
}
