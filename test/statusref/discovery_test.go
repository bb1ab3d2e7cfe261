package statusref

import (
	"context"
	"crypto/ecdsa"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/peers"
)

// TestDiscovery_statusGoPeerPool: status-go v0.70.1's own discovery stack and peer pool,
// given only our node as bootnode, finds our node by "whisper" and connects to it, and
// finds it by "whispermail" and caches it as a mailserver; a second node of ours, given
// the same bootnode, finds the status-go node by "whisper" and connects to it.
func TestDiscovery_statusGoPeerPool(t *testing.T) {
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	ours := runNode(t, node.Config{ListenAddr: "127.0.0.1:0", Discovery: node.DiscoveryConfig{
		Topics:   map[string]peers.Limits{node.TopicWhisper: {Min: 2, Max: 3}},
		Register: []string{node.TopicWhisper, node.TopicMailserver}}}, key)

	sg := Start(t, Options{})
	start := time.Now()
	if err := sg.DiscoveryStart(DiscoveryOptions{Bootnodes: []string{ours.Enode()},
		Topics:   map[string][2]int{"whisper": {1, 1}, "whispermail": {1, 1}},
		Register: []string{"whisper"}, TrustedMailservers: []string{ours.ID().String()}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ps, cached, err := sg.DiscoveryStatus("whisper", "whispermail")
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(ps, ours.ID().String()) && slices.Contains(cached["whispermail"], ours.ID().String()) {
			t.Logf("status-go's pool connected to our node and cached it as a mailserver after %v", time.Since(start).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status-go: peers %v, cached %v", ps, cached)
		}
		time.Sleep(100 * time.Millisecond)
	}

	key2, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	second := runNode(t, node.Config{ListenAddr: "127.0.0.1:0", BootNodes: []string{ours.Enode()},
		Discovery: node.DiscoveryConfig{Topics: map[string]peers.Limits{node.TopicWhisper: {Min: 2, Max: 2}}}}, key2)
	for {
		st := second.DiscoveryStatus()
		if len(st.Topics) == 1 && slices.ContainsFunc(st.Topics[0].Peers, func(id enode.ID) bool { return id.String() == sg.ID() }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("our second node did not find status-go: %+v", st.Topics)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func runNode(t *testing.T, cfg node.Config, key *ecdsa.PrivateKey) *node.Node {
	t.Helper()
	nd, err := node.New(cfg, key)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- nd.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	select {
	case <-nd.Ready():
	case err := <-done:
		t.Fatal(err)
	}
	return nd
}
