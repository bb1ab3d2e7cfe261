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
// given only our node as bootnode, finds our node by "whispermail" and caches it as a
// mailserver (after connecting and verifying it), and finds it by "whisper" and connects
// to it; a second node of ours, given the same bootnode, finds that status-go node by
// "whisper" and connects to it.
func TestDiscovery_statusGoPeerPool(t *testing.T) {
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	ours := runNode(t, node.Config{ListenAddr: "127.0.0.1:0", Discovery: node.DiscoveryConfig{
		Topics:   map[string]peers.Limits{node.TopicWhisper: {Min: 2, Max: 3}},
		Register: []string{node.TopicWhisper, node.TopicMailserver}}}, key)

	// One status-go node per topic: status-go's pools share the server's add events, so
	// a mailserver already connected through its whisper pool never reaches its
	// whispermail pool (no second add event) and is never cached; which pool sees our
	// node first is a race in status-go, not something to test.
	// Normally done in 2–6 s. The deadline covers two of geth v1.9.20 discv5's bucket
	// refreshes (1 min): status-go's discv5 gives a bond up after 500 ms without an
	// answer, and on a loaded machine (CI under -race, load 15 on 2 cores) a lost bond
	// with the bootnode leaves its table empty until the next refresh, which a 60 s
	// deadline lost about once in three full runs.
	start := time.Now()
	deadline := time.Now().Add(150 * time.Second)
	mail := Start(t, Options{})
	if err := mail.DiscoveryStart(DiscoveryOptions{Bootnodes: []string{ours.Enode()},
		Topics: map[string][2]int{"whispermail": {1, 1}}, TrustedMailservers: []string{ours.ID().String()}}); err != nil {
		t.Fatal(err)
	}
	sg := Start(t, Options{})
	if err := sg.DiscoveryStart(DiscoveryOptions{Bootnodes: []string{ours.Enode()},
		Topics: map[string][2]int{"whisper": {1, 1}}, Register: []string{"whisper"}}); err != nil {
		t.Fatal(err)
	}
	for mailFound, whisperFound := false, false; !mailFound || !whisperFound; time.Sleep(100 * time.Millisecond) {
		_, cached, err := mail.DiscoveryStatus("whispermail")
		if err != nil {
			t.Fatal(err)
		}
		ps, _, err := sg.DiscoveryStatus("whisper")
		if err != nil {
			t.Fatal(err)
		}
		if !mailFound && slices.Contains(cached["whispermail"], ours.ID().String()) {
			mailFound = true
			t.Logf("status-go's pool found our node by whispermail and cached it as a mailserver after %v", time.Since(start).Round(time.Millisecond))
		}
		if !whisperFound && slices.Contains(ps, ours.ID().String()) {
			whisperFound = true
			t.Logf("status-go's pool found our node by whisper and connected after %v", time.Since(start).Round(time.Millisecond))
		}
		if time.Now().After(deadline) {
			t.Fatalf("status-go: mailserver cached %v, whisper peers %v", cached, ps)
		}
	}

	key2, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	second := runNode(t, node.Config{ListenAddr: "127.0.0.1:0", BootNodes: []string{ours.Enode()},
		Discovery: node.DiscoveryConfig{Topics: map[string]peers.Limits{node.TopicWhisper: {Min: 2, Max: 2}}}}, key2)
	// Our pool's search has a deadline of its own, as long as its design takes (fast
	// search for FastModeTimeout, then one slow search, and a margin), not what the
	// status-go half left of the first.
	deadline = time.Now().Add(peers.DefaultFastModeTimeout + peers.DefaultSlowSync + 15*time.Second)
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
