package statusref

import (
	"context"
	"crypto/ecdsa"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/core/status"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/store"
	"github.com/statusgate/statusgate/test/statusnet"
)

// us is our side of an interop test: a node, a SQLite store, a status client with
// ratchets over it, and the 1:1 side of our identity. restart stops all of it and
// starts it again on the same key, store file and node key, as a process restart would.
type us struct {
	key     *ecdsa.PrivateKey
	nodeKey *ecdsa.PrivateKey
	dir     string
	format  chat.SendFormat
	nodeCfg node.Config // ListenAddr and MaxPeers are set by start

	nd     *node.Node
	tr     *holdTransport
	st     *store.Store
	client *status.Client
	direct *status.Direct
	stop   func()
	// late: start leaves the 1:1 side (and its contact code) to startDirect.
	late bool
	ctx  context.Context // the started side's lifetime
}

func newUs(t *testing.T) *us { return newUsWith(t, false, node.Config{}) }

// newUsLate is newUs without the 1:1 side: startDirect starts it.
func newUsLate(t *testing.T) *us { return newUsWith(t, true, node.Config{}) }

// newUsNode is newUs with a node configuration (protocols, light mode, limits).
func newUsNode(t *testing.T, cfg node.Config) *us { return newUsWith(t, false, cfg) }

func newUsWith(t *testing.T, late bool, cfg node.Config) *us {
	t.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	nk, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	u := &us{key: k, nodeKey: nk, dir: t.TempDir(), format: chat.SendProtobuf, late: late, nodeCfg: cfg}
	u.start(t)
	t.Cleanup(func() { u.stop() })
	return u
}

func (u *us) pub() *ecdsa.PublicKey { return &u.key.PublicKey }

func (u *us) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg := u.nodeCfg
	cfg.ListenAddr, cfg.MaxPeers = "127.0.0.1:0", 50
	nd, err := node.New(cfg, u.nodeKey)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := nd.Run(ctx); err != nil {
			t.Errorf("node run: %v", err)
		}
	}()
	st, err := store.Open(ctx, store.Config{Driver: store.DriverSQLite, Path: filepath.Join(u.dir, "state.db")})
	if err != nil {
		cancel()
		wg.Wait()
		t.Fatal(err)
	}
	u.direct = nil
	u.stop = func() {
		if u.direct != nil {
			u.direct.Close()
		}
		cancel()
		wg.Wait()
		st.Close()
	}
	select {
	case <-nd.Ready():
	case <-time.After(wait):
		u.stop()
		t.Fatal("our node did not start")
	}
	u.nd, u.st = nd, st
	u.tr = &holdTransport{nd: nd}
	u.client, err = status.New(u.tr, status.Config{
		Ratchets: status.StoreRatchets(st, ratchet.Config{}), Identity: u.key, SendFormat: u.format, Seen: st,
	})
	if err != nil {
		u.stop()
		t.Fatal(err)
	}
	u.ctx = ctx
	if !u.late {
		u.startDirect(t)
	}
}

// startDirect starts the 1:1 side of our identity, which publishes its contact code.
func (u *us) startDirect(t *testing.T) {
	t.Helper()
	direct, err := u.client.Direct(u.ctx, u.key)
	if err != nil {
		t.Fatal(err)
	}
	u.direct = direct
}

// skipContactCode records our contact code as published now, so that our 1:1 side,
// started next (newUsLate, startDirect), does not advertise it for ContactCodeInterval
// (6 h): status-go then holds no bundle of ours until we send it one.
func (u *us) skipContactCode(t *testing.T) {
	t.Helper()
	r, err := status.StoreRatchets(u.st, ratchet.Config{})(u.ctx, u.key)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.ContactCodePublished(u.ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// restart stops our node, client and store and starts them again on the same files.
func (u *us) restart(t *testing.T) {
	t.Helper()
	u.stop()
	u.start(t)
}

// link connects our node and ref and waits until both see the other: our node dials,
// so a restarted side of ours reconnects at once.
func link(t *testing.T, u *us, ref *Node) {
	t.Helper()
	if err := u.nd.AddPeer(ref.Enode(), false); err != nil {
		t.Fatal(err)
	}
	id, err := enode.ParseV4(ref.Enode())
	if err != nil {
		t.Fatal(err)
	}
	statusnet.WaitPeer(t, u.nd, id.ID())
	ref.WaitPeer(t, u.nd.ID().String(), wait)
}

// holdTransport is our node as the status client's Transport, able to keep sealed
// envelopes instead of sending them, and to send them later in any order: our side of
// the out-of-order test.
type holdTransport struct {
	nd *node.Node

	mu      sync.Mutex
	holding bool
	held    []*whisper.Envelope
}

func (h *holdTransport) Subscribe(f whisper.Filter) (*whisper.Subscription, error) {
	return h.nd.Subscribe(f)
}

func (h *holdTransport) Post(ctx context.Context, p *whisper.MessageParams) (*whisper.Envelope, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.holding {
		return h.nd.Post(ctx, p)
	}
	env, err := whisper.Wrap(p)
	if err != nil {
		return nil, err
	}
	h.held = append(h.held, env)
	return env, nil
}

func (h *holdTransport) hold() {
	h.mu.Lock()
	h.holding = true
	h.mu.Unlock()
}

// release sends the held envelopes, in reverse order if asked, and stops holding.
func (h *holdTransport) release(t *testing.T, reverse bool) {
	t.Helper()
	h.mu.Lock()
	held := h.held
	h.held, h.holding = nil, false
	h.mu.Unlock()
	for i := range held {
		env := held[i]
		if reverse {
			env = held[len(held)-1-i]
		}
		if err := h.nd.Whisper().Send(env); err != nil {
			t.Fatal(err)
		}
	}
}

// recv returns the next message on ch, failing after wait.
func recv(t *testing.T, ch <-chan *status.Message) *status.Message {
	t.Helper()
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatal("our message channel closed")
		}
		return m
	case <-time.After(wait):
		t.Fatalf("no message for us within %v", wait)
		return nil
	}
}

// fromRef has ref send text to chatID and checks what our channel ch receives: the id,
// text, author and clock status-go reported. It returns our message.
func fromRef(t *testing.T, ref *Node, chatID string, ch <-chan *status.Message, text string) *status.Message {
	t.Helper()
	sent, err := ref.Send(chatID, text, "")
	if err != nil {
		t.Fatal(err)
	}
	m := recv(t, ch)
	if m.Text != text || [32]byte(m.ID) != sent.ID || !m.Author.Equal(ref.PublicKey()) || m.Clock != sent.Clock {
		t.Fatalf("status-go sent %q (id %x, clock %d); we got %q (id %x, clock %d) from %s",
			text, sent.ID, sent.Clock, m.Text, m.ID[:], m.Clock, m.AuthorKey)
	}
	return m
}

// toRef sends text from our conversation cv and checks what ref receives: the id, text,
// author, clock and type we sent. It returns status-go's message.
func toRef(t *testing.T, u *us, cv *status.Conversation, ref *Node, text string) Message {
	t.Helper()
	clock := cv.NextClock(time.Now())
	id, err := cv.SendMessage(context.Background(), status.Outgoing{Text: text, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	m := ref.WaitMessage(t, wait)
	if m.Text != text || m.ID != [32]byte(id) || !m.From.Equal(u.pub()) || m.Clock != clock || m.MessageType != "ONE_TO_ONE" {
		t.Fatalf("we sent %q (id %x, clock %d); status-go got %q (id %x, clock %d, %s) from %x",
			text, id[:], clock, m.Text, m.ID, m.Clock, m.MessageType, crypto.FromECDSAPub(m.From))
	}
	return m
}

// timeNow and timeAfter keep the tests' time calls in one place.
func timeNow() time.Time                         { return time.Now() }
func timeAfter(d time.Duration) <-chan time.Time { return time.After(d) }
