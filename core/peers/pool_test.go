package peers

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/event"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/statusgate/statusgate/core/discv5"
)

// fakeServer records what the pool asks of the devp2p server.
type fakeServer struct {
	feed    event.Feed
	added   []enode.ID
	removed []enode.ID
}

func (s *fakeServer) AddPeer(n *enode.Node)    { s.added = append(s.added, n.ID()) }
func (s *fakeServer) RemovePeer(n *enode.Node) { s.removed = append(s.removed, n.ID()) }
func (s *fakeServer) SubscribeEvents(ch chan *p2p.PeerEvent) event.Subscription {
	return s.feed.Subscribe(ch)
}
func (s *fakeServer) take() (added, removed []enode.ID) {
	added, removed, s.added, s.removed = s.added, s.removed, nil, nil
	return added, removed
}

// fakeDisc records the searches.
type fakeDisc struct {
	periods map[discv5.Topic]time.Duration // 0: stopped
}

func (d *fakeDisc) Search(t discv5.Topic, period time.Duration, _ chan<- discv5.Node) error {
	d.periods[t] = period
	return nil
}
func (d *fakeDisc) StopSearch(t discv5.Topic) error { d.periods[t] = 0; return nil }

// memCache is a Cache in memory.
type memCache struct {
	mu sync.Mutex
	m  map[string][]string
}

func (c *memCache) AddPeer(_ context.Context, topic, node string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.Contains(c.m[topic], node) {
		c.m[topic] = append(c.m[topic], node)
	}
	return nil
}
func (c *memCache) RemovePeer(_ context.Context, topic string, id enode.ID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[topic] = slices.DeleteFunc(c.m[topic], func(u string) bool { return enode.MustParse(u).ID() == id })
	return nil
}
func (c *memCache) Peers(_ context.Context, topic string, limit int) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.m[topic][:min(limit, len(c.m[topic]))]), nil
}

// harness drives a Pool by hand on a simulated clock: no loop, inputs applied in order.
type harness struct {
	*Pool
	srv   *fakeServer
	disc  *fakeDisc
	clock *mclock.Simulated
	ctx   context.Context
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{srv: &fakeServer{}, disc: &fakeDisc{periods: map[discv5.Topic]time.Duration{}}, clock: new(mclock.Simulated),
		ctx: context.Background()}
	h.clock.Run(time.Hour)
	cfg.Clock = h.clock
	p, err := New(cfg, h.srv, h.disc)
	if err != nil {
		t.Fatal(err)
	}
	h.Pool = p
	p.start(h.ctx)
	return h
}

func (h *harness) topic(name discv5.Topic) *topicPool {
	for _, t := range h.topics {
		if t.topic == name {
			return t
		}
	}
	panic(name)
}

func (h *harness) find(topic discv5.Topic, ns ...discv5.Node) {
	for _, n := range ns {
		h.handleFound(h.ctx, h.topic(topic), n)
	}
	h.publish()
}

func (h *harness) event(typ p2p.PeerEventType, ids ...enode.ID) {
	for _, id := range ids {
		h.handleEvent(h.ctx, &p2p.PeerEvent{Type: typ, Peer: id})
	}
	h.publish()
}

func (h *harness) advance(d time.Duration) {
	h.clock.Run(d)
	h.handleTimers(h.clock.Now())
	h.publish()
}

func node(t *testing.T, i int) discv5.Node {
	k, err := crypto.ToECDSA(crypto.Keccak256([]byte(fmt.Sprint("peer", i))))
	if err != nil {
		t.Fatal(err)
	}
	n, err := discv5.NodeFromEnode(enode.NewV4(&k.PublicKey, net.IPv4(127, 0, 0, 1), 30000+i, 30000+i))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func id(n discv5.Node) enode.ID { return n.ID.EnodeID() }

func ids(ns ...discv5.Node) []enode.ID {
	var out []enode.ID
	for _, n := range ns {
		out = append(out, id(n))
	}
	return out
}

func (h *harness) mode(t *testing.T, topic discv5.Topic, want Mode, period time.Duration) {
	t.Helper()
	if got := h.topic(topic).mode; got != want {
		t.Fatalf("%s mode %s, want %s", topic, got, want)
	}
	if got := h.disc.periods[topic]; got != period {
		t.Fatalf("%s search period %v, want %v", topic, got, period)
	}
}

var whisper = map[discv5.Topic]Limits{"whisper": {Min: 2, Max: 2}}

// Fast search below the minimum, slow at it, paused 10 s after the maximum is held,
// resumed (fast) when a peer drops below the minimum.
func TestPool_modes(t *testing.T) {
	h := newHarness(t, Config{Topics: whisper})
	h.mode(t, "whisper", ModeFast, 3*time.Second)
	a, b := node(t, 1), node(t, 2)
	h.find("whisper", a, b)
	if added, _ := h.srv.take(); !slices.Equal(added, ids(a, b)) {
		t.Fatalf("dialled %v", added)
	}
	h.event(p2p.PeerEventTypeAdd, id(a))
	h.mode(t, "whisper", ModeFast, 3*time.Second)
	h.event(p2p.PeerEventTypeAdd, id(b))
	h.mode(t, "whisper", ModeSlow, 30*time.Second)
	h.advance(9 * time.Second)
	h.mode(t, "whisper", ModeSlow, 30*time.Second)
	h.advance(2 * time.Second)
	h.mode(t, "whisper", ModePaused, 0)
	if st := h.Status(); st.Searching || st.Topics[0].Connected != 2 {
		t.Fatalf("status %+v", st)
	}
	h.event(p2p.PeerEventTypeDrop, id(a))
	h.mode(t, "whisper", ModeFast, 3*time.Second)
	if _, removed := h.srv.take(); !slices.Equal(removed, ids(a)) {
		t.Fatalf("removed %v, want the dropped peer (no redial)", removed)
	}
}

// Fast mode lasts 30 s even below the minimum; a later drop below it starts it again.
func TestPool_fastModeTimeout(t *testing.T) {
	h := newHarness(t, Config{Topics: whisper})
	h.advance(29 * time.Second)
	h.mode(t, "whisper", ModeFast, 3*time.Second)
	h.advance(2 * time.Second)
	h.mode(t, "whisper", ModeSlow, 30*time.Second)
	a := node(t, 1)
	h.find("whisper", a)
	h.event(p2p.PeerEventTypeAdd, id(a))
	h.event(p2p.PeerEventTypeDrop, id(a))
	h.mode(t, "whisper", ModeFast, 3*time.Second)
	h.advance(31 * time.Second)
	h.mode(t, "whisper", ModeSlow, 30*time.Second)
}

// Found beyond the maximum: queued; a dropped peer is replaced by the most recently found
// queued node, unless it was last seen over an hour ago.
func TestPool_replacementFromQueue(t *testing.T) {
	h := newHarness(t, Config{Topics: whisper})
	a, b, c, d := node(t, 1), node(t, 2), node(t, 3), node(t, 4)
	h.find("whisper", a, b)
	h.event(p2p.PeerEventTypeAdd, id(a), id(b))
	h.find("whisper", c)
	h.advance(time.Second)
	h.find("whisper", d)
	h.srv.take()
	if st := h.Status(); st.Topics[0].Pending != 2 {
		t.Fatalf("status %+v", st)
	}
	h.event(p2p.PeerEventTypeDrop, id(a))
	if added, _ := h.srv.take(); !slices.Equal(added, ids(d)) {
		t.Fatalf("replacement %v, want the most recently found", added)
	}
	h.event(p2p.PeerEventTypeAdd, id(d))
	// c was found over an hour ago by now: not connectable.
	h.advance(61 * time.Minute)
	h.event(p2p.PeerEventTypeDrop, id(b))
	if added, _ := h.srv.take(); len(added) != 0 {
		t.Fatalf("dialled expired %v", added)
	}
	if st := h.Status(); st.Topics[0].Pending != 0 {
		t.Fatalf("expired peer kept: %+v", st)
	}
}

// Dials in flight may overshoot: the peer connecting over the maximum is disconnected
// and queued again; when it drops it is not forgotten.
func TestPool_overMaxIsDismissed(t *testing.T) {
	h := newHarness(t, Config{Topics: whisper})
	a, b, c := node(t, 1), node(t, 2), node(t, 3)
	h.find("whisper", a, b, c)
	if added, _ := h.srv.take(); len(added) != 3 {
		t.Fatalf("dialled %v while below the maximum", added)
	}
	h.event(p2p.PeerEventTypeAdd, id(a), id(b), id(c))
	if _, removed := h.srv.take(); !slices.Equal(removed, ids(c)) {
		t.Fatalf("removed %v, want the third", removed)
	}
	h.event(p2p.PeerEventTypeDrop, id(c))
	if st := h.Status(); st.Topics[0].Connected != 2 || st.Topics[0].Pending != 1 {
		t.Fatalf("status %+v", st)
	}
	h.event(p2p.PeerEventTypeDrop, id(a))
	if added, _ := h.srv.take(); !slices.Equal(added, ids(c)) {
		t.Fatalf("replacement %v, want the dismissed peer", added)
	}
}

// Peers we connected to are cached, dropped ones leave the cache, and the cache seeds
// the next start.
func TestPool_cache(t *testing.T) {
	cache := &memCache{m: map[string][]string{}}
	h := newHarness(t, Config{Topics: whisper, Cache: cache})
	a, b := node(t, 1), node(t, 2)
	h.find("whisper", a, b)
	h.event(p2p.PeerEventTypeAdd, id(a), id(b))
	h.event(p2p.PeerEventTypeDrop, id(b))
	if got, _ := cache.Peers(h.ctx, "whisper", 10); len(got) != 1 || enode.MustParse(got[0]).ID() != id(a) {
		t.Fatalf("cache %v", got)
	}
	h2 := newHarness(t, Config{Topics: whisper, Cache: cache})
	if added, _ := h2.srv.take(); !slices.Equal(added, ids(a)) {
		t.Fatalf("restart dialled %v, want the cached peer", added)
	}
}

// A cache-only topic keeps candidates (most recent first) and never dials them.
func TestPool_cacheOnlyCandidates(t *testing.T) {
	h := newHarness(t, Config{Topics: map[discv5.Topic]Limits{"whispermail": {Min: 1, Max: 2}}, CacheOnly: []discv5.Topic{"whispermail"}})
	a, b := node(t, 1), node(t, 2)
	h.find("whispermail", a)
	h.advance(time.Second)
	h.find("whispermail", b)
	if added, _ := h.srv.take(); len(added) != 0 {
		t.Fatalf("dialled %v", added)
	}
	got := h.Candidates("whispermail")
	if len(got) != 2 || got[0].ID() != id(b) || got[1].ID() != id(a) {
		t.Fatalf("candidates %v", got)
	}
	h.advance(11 * time.Second)
	h.mode(t, "whispermail", ModePaused, 0)
}

// Run: the loop takes the server's events and the discovery's found nodes.
func TestPool_run(t *testing.T) {
	srv := &fakeServer{}
	disc := &chanDisc{found: make(chan chan<- discv5.Node, 1)}
	p, err := New(Config{Topics: whisper}, srv, disc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	found := <-disc.found
	found <- node(t, 1)
	deadline := time.After(5 * time.Second)
	for p.Status().Topics[0].Pending != 1 {
		select {
		case <-deadline:
			t.Fatal("found node not taken")
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

type chanDisc struct{ found chan chan<- discv5.Node }

func (d *chanDisc) Search(_ discv5.Topic, _ time.Duration, found chan<- discv5.Node) error {
	select {
	case d.found <- found:
	default:
	}
	return nil
}
func (d *chanDisc) StopSearch(discv5.Topic) error { return nil }

// A found node that already dialled us counts as a peer of the topic without a dial.
func TestPool_inboundPeerCounts(t *testing.T) {
	h := newHarness(t, Config{Topics: whisper})
	a, b := node(t, 1), node(t, 2)
	h.event(p2p.PeerEventTypeAdd, id(a)) // inbound: not ours yet
	if st := h.Status(); st.Topics[0].Connected != 0 {
		t.Fatalf("inbound peer counted before it was found: %+v", st)
	}
	h.find("whisper", a, b)
	if added, _ := h.srv.take(); !slices.Equal(added, ids(b)) {
		t.Fatalf("dialled %v, want only the one not connected", added)
	}
	if st := h.Status(); st.Topics[0].Connected != 1 {
		t.Fatalf("status %+v", st)
	}
}
