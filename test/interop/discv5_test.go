package interop

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/statusgate/statusgate/core/discv5"
)

// startDiscv5 runs one of our discv5 nodes on 127.0.0.1 until the test ends.
func startDiscv5(t *testing.T, cfg discv5.Config) *discv5.Network {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PrivateKey == nil {
		if cfg.PrivateKey, err = crypto.GenerateKey(); err != nil {
			t.Fatal(err)
		}
	}
	nw, err := discv5.New(conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- nw.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		if st := nw.Stats(); st.Dropped() > 0 {
			t.Logf("our discv5 node dropped: %v", st.Drops)
		}
	})
	return nw
}

func refDiscNode(t *testing.T, ref *RefNode, url string) discv5.Node {
	t.Helper()
	en, err := enode.ParseV4(url)
	if err != nil {
		t.Fatal(err)
	}
	n, err := discv5.NodeFromEnode(en)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func enodeID(n discv5.Node) string { return n.ID.EnodeID().String() }

// waitOurFound reads found until the node with id arrives.
func waitOurFound(t *testing.T, found <-chan discv5.Node, id discv5.NodeID, timeout time.Duration) discv5.Node {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case n := <-found:
			if n.ID == id {
				return n
			}
		case <-deadline:
			t.Fatalf("node %x not found within %v", id[:8], timeout)
		}
	}
}

// TestDiscv5_gethFindsOurNode: our node advertises "whisper" and is geth's bootnode;
// geth v1.9.20's SearchTopic finds it, with the RLPx port we announce.
func TestDiscv5_gethFindsOurNode(t *testing.T) {
	t.Parallel()
	ours := startDiscv5(t, discv5.Config{TCPPort: 30777})
	if err := ours.Register("whisper"); err != nil {
		t.Fatal(err)
	}
	ref := StartRefNode(t, RefNodeOptions{})
	if _, err := ref.Discv5Start(ours.Self().String()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := ref.SearchTopic("whisper", time.Second, 0); err != nil {
		t.Fatal(err)
	}
	ev := ref.WaitFound(t, "whisper", enodeID(ours.Self()), 30*time.Second)
	t.Logf("geth found our node in %v: %s", time.Since(start).Round(time.Millisecond), ev.Enode)
	en, err := enode.ParseV4(ev.Enode)
	if err != nil {
		t.Fatal(err)
	}
	if en.TCP() != 30777 || en.UDP() != int(ours.Self().UDP) {
		t.Errorf("geth found %s, want TCP 30777 and UDP %d", ev.Enode, ours.Self().UDP)
	}
}

// TestDiscv5_ourNodeFindsGeth: geth advertises "whisper" and is our bootnode; our search
// finds it with geth's ports.
func TestDiscv5_ourNodeFindsGeth(t *testing.T) {
	t.Parallel()
	ref := StartRefNode(t, RefNodeOptions{})
	url, err := ref.Discv5Start()
	if err != nil {
		t.Fatal(err)
	}
	if err := ref.RegisterTopic("whisper"); err != nil {
		t.Fatal(err)
	}
	gethNode := refDiscNode(t, ref, url)
	ours := startDiscv5(t, discv5.Config{Bootnodes: []discv5.Node{gethNode}})
	found := make(chan discv5.Node, 64)
	start := time.Now()
	if err := ours.Search("whisper", time.Second, found); err != nil {
		t.Fatal(err)
	}
	n := waitOurFound(t, found, gethNode.ID, 30*time.Second)
	t.Logf("we found geth in %v: %s", time.Since(start).Round(time.Millisecond), n)
	refTCP, err := enode.ParseV4(ref.Enode())
	if err != nil {
		t.Fatal(err)
	}
	if int(n.TCP) != refTCP.TCP() || n.UDP != gethNode.UDP {
		t.Errorf("found %s, want TCP %d", n, refTCP.TCP())
	}
}

// TestDiscv5_gethAsBootnodeRelaysOurs: two of our nodes meet through a geth bootnode:
// geth's table and neighbors answers carry them to each other.
func TestDiscv5_gethAsBootnodeRelaysOurs(t *testing.T) {
	t.Parallel()
	ref := StartRefNode(t, RefNodeOptions{})
	url, err := ref.Discv5Start()
	if err != nil {
		t.Fatal(err)
	}
	boot := refDiscNode(t, ref, url)
	adv := startDiscv5(t, discv5.Config{Bootnodes: []discv5.Node{boot}})
	if err := adv.Register("whispermail"); err != nil {
		t.Fatal(err)
	}
	seeker := startDiscv5(t, discv5.Config{Bootnodes: []discv5.Node{boot}})
	found := make(chan discv5.Node, 64)
	if err := seeker.Search("whispermail", time.Second, found); err != nil {
		t.Fatal(err)
	}
	waitOurFound(t, found, adv.Self().ID, 30*time.Second)
}

// TestDiscv5_gethRegistersWithUs: geth's registrant collects our ticket, waits its period
// and registers with our registrar; a third node asking only us gets geth back.
func TestDiscv5_gethRegistersWithUs(t *testing.T) {
	t.Parallel()
	registrar := startDiscv5(t, discv5.Config{MinWaitPeriod: 2 * time.Second})
	ref := StartRefNode(t, RefNodeOptions{})
	url, err := ref.Discv5Start(registrar.Self().String())
	if err != nil {
		t.Fatal(err)
	}
	gethNode := refDiscNode(t, ref, url)
	if err := ref.RegisterTopic("whispermail"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	deadline := start.Add(120 * time.Second)
	for !slices.ContainsFunc(registrar.Registrations("whispermail"), func(n discv5.Node) bool { return n.ID == gethNode.ID }) {
		if time.Now().After(deadline) {
			t.Fatalf("geth did not register within 120 s: %+v", registrar.Stats())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("geth registered with us after %v", time.Since(start).Round(time.Millisecond))
	asker := startDiscv5(t, discv5.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ns, err := asker.QueryTopic(ctx, registrar.Self(), "whispermail")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(ns, func(n discv5.Node) bool { return n.ID == gethNode.ID }) {
		t.Fatalf("our registrar answered %v, want geth", ns)
	}
}

// TestDiscv5_weRegisterWithGeth: our registrant takes geth's ticket (geth's minimum wait
// is one minute), registers, and geth then answers a topic query with us although geth
// itself does not advertise the topic.
func TestDiscv5_weRegisterWithGeth(t *testing.T) {
	t.Parallel()
	ref := StartRefNode(t, RefNodeOptions{})
	url, err := ref.Discv5Start()
	if err != nil {
		t.Fatal(err)
	}
	gethNode := refDiscNode(t, ref, url)
	adv := startDiscv5(t, discv5.Config{Bootnodes: []discv5.Node{gethNode}, RegisterInterval: time.Second})
	if err := adv.Register("whispermail"); err != nil {
		t.Fatal(err)
	}
	asker := startDiscv5(t, discv5.Config{})
	start := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ns, err := asker.QueryTopic(ctx, gethNode, "whispermail")
		cancel()
		if err == nil && slices.ContainsFunc(ns, func(n discv5.Node) bool { return n.ID == adv.Self().ID }) {
			break
		}
		if time.Since(start) > 100*time.Second {
			t.Fatalf("geth does not hold our registration after 100 s (last answer %v, %v); ours: %+v", ns, err, adv.Stats())
		}
		time.Sleep(2 * time.Second)
	}
	t.Logf("geth answered with our registration after %v", time.Since(start).Round(time.Millisecond))
}
