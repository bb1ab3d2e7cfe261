package node

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"net"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/statusgate/statusgate/core/whisper"
)

// wait bounds every wait on the network in these tests.
const wait = 10 * time.Second

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// running is a node whose Run goroutine the test owns.
type running struct {
	*Node
	cancel   context.CancelFunc
	finished chan struct{} // closed when Run has returned
	err      error         // Run's result, set before finished closes
}

// stop cancels the node and waits for Run to return.
func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case <-r.finished:
		if r.err != nil {
			t.Errorf("run: %v", r.err)
		}
	case <-time.After(wait):
		t.Fatalf("node did not stop within %s", wait)
	}
}

// start builds a node on a loopback port, runs it and waits until it listens. The test's
// cleanup stops it unless the test already did.
func start(t testing.TB, cfg Config) *running {
	t.Helper()
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = "127.0.0.1:0"
	}
	n, err := New(cfg, newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Node: n, cancel: cancel, finished: make(chan struct{})}
	go func() {
		defer close(r.finished)
		r.err = n.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.finished:
		case <-time.After(wait):
			t.Errorf("node did not stop within %s", wait)
		}
	})
	select {
	case <-n.Ready():
	case <-r.finished:
		t.Fatalf("run: %v", r.err)
	case <-time.After(wait):
		t.Fatalf("node not ready within %s", wait)
	}
	return r
}

// pair starts node a, then node b with cfgB plus a's enode URL added by link, and waits
// until both see each other as Whisper peers.
func pair(t testing.TB, link func(cfg *Config, url string)) (a, b *running) {
	t.Helper()
	a = start(t, Config{ZeroPoW: true})
	cfgB := Config{ZeroPoW: true}
	link(&cfgB, a.Enode())
	b = start(t, cfgB)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := a.WaitPeers(ctx, 1); err != nil {
		t.Fatalf("a: %v", err)
	}
	if err := b.WaitPeers(ctx, 1); err != nil {
		t.Fatalf("b: %v", err)
	}
	return a, b
}

func static(cfg *Config, url string)  { cfg.StaticPeers = []string{url} }
func trusted(cfg *Config, url string) { cfg.TrustedPeers = []string{url} }

// receive waits for one message on sub.
func receive(t testing.TB, sub *whisper.Subscription) *whisper.ReceivedMessage {
	t.Helper()
	select {
	case m, ok := <-sub.C():
		if !ok {
			t.Fatal("subscription closed")
		}
		return m
	case <-time.After(wait):
		t.Fatalf("no message within %s", wait)
	}
	return nil
}

func samePub(a, b *ecdsa.PublicKey) bool {
	return a != nil && b != nil && bytes.Equal(crypto.FromECDSAPub(a), crypto.FromECDSAPub(b))
}

func TestNew_rejects(t *testing.T) {
	good := enode.NewV4(&newKey(t).PublicKey, net.IPv4(127, 0, 0, 1), 30303, 0).URLv4()
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"bad static peer", Config{StaticPeers: []string{good, "enode://nothex@127.0.0.1:30303"}}, "static_peers[1]"},
		{"bad trusted peer", Config{TrustedPeers: []string{"http://example.com"}}, "trusted_peers[0]"},
		{"bad bootnode", Config{BootNodes: []string{good, good, "enode://"}}, "bootnodes[2]"},
		{"listen addr without port", Config{ListenAddr: "127.0.0.1"}, "listen_addr"},
		{"negative max peers", Config{MaxPeers: -1}, "max_peers"},
		{"negative min PoW", Config{Whisper: whisper.Config{MinPoW: -1}}, "whisper.min_pow"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, newKey(t))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %q", err, tc.want)
			}
		})
	}
	if _, err := New(Config{}, nil); err == nil || !strings.Contains(err.Error(), "nil key") {
		t.Errorf("nil key: %v", err)
	}
	if _, err := New(Config{StaticPeers: []string{good}, NoListen: true, ListenAddr: "junk"}, newKey(t)); err != nil {
		t.Errorf("valid config with NoListen refused: %v", err)
	}
}

func TestNode_symmetricSignedMessage(t *testing.T) {
	a, b := pair(t, static)
	topic := whisper.TopicFromName("statusgate-test")
	sym, err := whisper.SymKeyFromPassword("statusgate-test")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := b.Subscribe(whisper.Filter{Topics: []whisper.Topic{topic}, SymKey: sym})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	src := newKey(t)
	payload := []byte("hello from a")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	env, err := a.Post(ctx, &whisper.MessageParams{Topic: topic, KeySym: sym, Src: src, Payload: payload,
		TTL: 15, PoW: 0.002, WorkTime: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m := receive(t, sub)
	if !bytes.Equal(m.Payload, payload) {
		t.Errorf("payload %q, want %q", m.Payload, payload)
	}
	if !samePub(m.Src, &src.PublicKey) {
		t.Error("signer is not the sender's key")
	}
	if m.EnvelopeHash != env.Hash() || m.SymKeyHash != sym.Hash() {
		t.Errorf("envelope %x key %x, want %x %x", m.EnvelopeHash, m.SymKeyHash, env.Hash(), sym.Hash())
	}
}

func TestNode_asymmetricMessage(t *testing.T) {
	a, b := pair(t, static)
	topic := whisper.TopicFromName("statusgate-direct")
	dst := newKey(t)
	sub, err := a.Subscribe(whisper.Filter{Topics: []whisper.Topic{topic}, AsymKey: dst})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	src := newKey(t)
	payload := []byte("hello from b")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := b.Post(ctx, &whisper.MessageParams{Topic: topic, Dst: &dst.PublicKey, Src: src, Payload: payload,
		TTL: 15, PoW: 0.002, WorkTime: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	m := receive(t, sub)
	if !bytes.Equal(m.Payload, payload) {
		t.Errorf("payload %q, want %q", m.Payload, payload)
	}
	if !samePub(m.Src, &src.PublicKey) || !samePub(m.Dst, &dst.PublicKey) {
		t.Error("signer or recipient key wrong")
	}
}

func TestNode_trustedPeer(t *testing.T) {
	a, b := pair(t, trusted)
	peersB := b.Peers()
	if len(peersB) != 1 || peersB[0].ID != a.ID() {
		t.Fatalf("b's peers: %+v", peersB)
	}
	if !peersB[0].Trusted {
		t.Error("b does not mark a, from its trusted_peers, as trusted")
	}
	if peersA := a.Peers(); len(peersA) != 1 || peersA[0].Trusted {
		t.Errorf("a's peers: %+v; b is not in a's trusted_peers", peersA)
	}
}

func TestNode_defaultPoW(t *testing.T) {
	n, err := New(Config{}, newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := n.Whisper().MinPoW(); got != DefaultMinPoW {
		t.Errorf("min PoW %v, want %v", got, DefaultMinPoW)
	}
	n, err = New(Config{ZeroPoW: true}, newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := n.Whisper().MinPoW(); got != 0 {
		t.Errorf("ZeroPoW: min PoW %v", got)
	}
}

func TestNode_shutdownLeavesNoGoroutines(t *testing.T) {
	base := runtime.NumGoroutine()

	a, b := pair(t, static)
	topic := whisper.TopicFromName("statusgate-leak")
	sym, err := whisper.SymKeyFromPassword("statusgate-leak")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := b.Subscribe(whisper.Filter{Topics: []whisper.Topic{topic}, SymKey: sym})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := a.Post(ctx, &whisper.MessageParams{Topic: topic, KeySym: sym, Payload: []byte("x"),
		TTL: 15, PoW: 0.002, WorkTime: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	receive(t, sub)

	a.cancel()
	b.cancel()
	a.stop(t)
	b.stop(t)
	if _, ok := <-sub.C(); ok {
		t.Error("subscription still open after the node stopped")
	}
	if a.Enode() != "" || len(a.Peers()) != 0 {
		t.Errorf("stopped node still reports enode %q, peers %d", a.Enode(), len(a.Peers()))
	}

	waitGoroutines(t, base)
}

// waitGoroutines waits up to 5 s for the goroutine count to fall to base, and fails
// with a dump of every goroutine if it does not.
func waitGoroutines(t testing.TB, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			var dump strings.Builder
			pprof.Lookup("goroutine").WriteTo(&dump, 1)
			t.Fatalf("%d goroutines after stop, %d before start:\n%s", runtime.NumGoroutine(), base, dump.String())
		}
		<-tick.C
	}
}

func TestRun_listenAddrInUse(t *testing.T) {
	base := runtime.NumGoroutine()
	a := start(t, Config{ZeroPoW: true})
	u, err := enode.ParseV4(a.Enode())
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(u.TCP()))

	b, err := New(Config{ListenAddr: addr, ZeroPoW: true}, newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "address already in use") {
			t.Errorf("run: %v, want address already in use", err)
		}
		var op *net.OpError
		if !errors.As(err, &op) {
			t.Errorf("run: %v does not wrap the listen error", err)
		}
	case <-time.After(wait):
		t.Fatal("Run did not return on a taken listen address")
	}
	// The failed start must clean up after itself (p2p.Server.Start does not: it leaves
	// its node database and port-mapping goroutines behind).
	a.stop(t)
	waitGoroutines(t, base)
}

func TestNode_discoveryFindsPeerThroughBootnode(t *testing.T) {
	a := start(t, Config{ZeroPoW: true, Discovery: DiscoveryConfig{V4: true}})
	u, err := enode.ParseV4(a.Enode())
	if err != nil {
		t.Fatal(err)
	}
	if u.UDP() != u.TCP() {
		t.Errorf("enode %s: discovery port %d, want the TCP port %d", a.Enode(), u.UDP(), u.TCP())
	}
	b := start(t, Config{ZeroPoW: true, Discovery: DiscoveryConfig{V4: true}, BootNodes: []string{a.Enode()}})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := b.WaitPeers(ctx, 1); err != nil {
		t.Fatal(err)
	}
}
