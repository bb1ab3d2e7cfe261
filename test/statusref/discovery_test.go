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
// mailserver (after connecting and verifying it), and connects with it for "whisper"
// (the connection is made by its pool or by ours, which searches "whisper" too); a
// second node of ours, given the same bootnode, finds that status-go node by "whisper"
// and connects to it.
//
// The node keys are placed, not random, because of how status-go's discv5 (geth
// v1.9.x p2p/discv5, status-im/go-ethereum v1.9.5-status.9) searches a topic in a
// network of three nodes. A search lookup's result includes the searcher itself
// (net.lookup pushes tab.self), and ticketStore.searchLookupDone asks only the nearest
// entry and those within minRadius of the target, which stays 2^63 until answers come
// in (math.Pow(2, 64) converted on amd64): the nodes sharing the target's top bit. The
// searcher's own entry has no state that may be asked. Four lookups in five are radius
// lookups aimed at the half of the ID space away from the topic hash
// (topicRadius.targetForBucket for buckets 0..7 flips its top bit; searchForceQuery =
// 4), so a searcher alone on that half asks nobody but on every fifth lookup, whose
// random target is on our half one time in two: 12 s and 27 s into its 30 s of fast
// search, then once per 150 s of slow search. That is how status-go did not find us by
// "whispermail" within 150 s once (CI, load 5-8; 1 run in 8 here with a 25 s deadline,
// where no topicQuery ever reached our node). With our node alone on that half, every
// lookup that knows us asks us.
func TestDiscovery_statusGoPeerPool(t *testing.T) {
	key := keyByTopic(t, node.TopicMailserver, false)
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
	mail := Start(t, Options{NodeKey: keyByTopic(t, node.TopicMailserver, true)})
	if err := mail.DiscoveryStart(DiscoveryOptions{Bootnodes: []string{ours.Enode()},
		Topics: map[string][2]int{"whispermail": {1, 1}}, TrustedMailservers: []string{ours.ID().String()}}); err != nil {
		t.Fatal(err)
	}
	sg := Start(t, Options{NodeKey: keyByTopic(t, node.TopicMailserver, true)})
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
			t.Logf("status-go connected with our node (whisper) after %v", time.Since(start).Round(time.Millisecond))
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

// keyByTopic returns a node key whose discv5 position, keccak256 of the public key (the
// enode ID), shares the top bit of keccak256(topic) when near is set and differs in it
// otherwise: the half of the ID space status-go's first search lookups for topic aim at
// when near is false (see TestDiscovery_statusGoPeerPool).
func keyByTopic(t *testing.T, topic string, near bool) *ecdsa.PrivateKey {
	t.Helper()
	th := crypto.Keccak256([]byte(topic))
	for {
		k, err := crypto.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		id := enode.PubkeyToIDV4(&k.PublicKey)
		if ((id[0]^th[0])&0x80 == 0) == near {
			return k
		}
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
