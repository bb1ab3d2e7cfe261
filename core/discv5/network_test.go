package discv5

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
)

// startNet runs a Network on 127.0.0.1:0 until the test ends.
func startNet(t testing.TB, cfg Config) *Network {
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
	nw, err := New(conn, cfg)
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
	})
	return nw
}

// waitFound reads found until a node with id arrives.
func waitFound(t *testing.T, found <-chan Node, id NodeID, timeout time.Duration) Node {
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

func TestNetwork_searchFindsAdvertiser(t *testing.T) {
	boot := startNet(t, Config{})
	adv := startNet(t, Config{Bootnodes: []Node{boot.Self()}, TCPPort: 30999})
	if err := adv.Register("whisper"); err != nil {
		t.Fatal(err)
	}
	seeker := startNet(t, Config{Bootnodes: []Node{boot.Self()}})
	found := make(chan Node, 64)
	if err := seeker.Search("whisper", 200*time.Millisecond, found); err != nil {
		t.Fatal(err)
	}
	n := waitFound(t, found, adv.Self().ID, 10*time.Second)
	if n.TCP != 30999 || n.UDP != adv.Self().UDP || !n.IP.IsLoopback() {
		t.Errorf("found %+v, want the advertiser's endpoint with TCP 30999", n)
	}
	if st := seeker.Stats(); st.TableNodes < 1 {
		t.Errorf("seeker table: %+v", st)
	}
}

func TestNetwork_ticketRegistration(t *testing.T) {
	registrar := startNet(t, Config{MinWaitPeriod: time.Second})
	adv := startNet(t, Config{Bootnodes: []Node{registrar.Self()}, RegisterInterval: 200 * time.Millisecond})
	if err := adv.Register("whispermail"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !slices.ContainsFunc(registrar.Registrations("whispermail"), func(n Node) bool { return n.ID == adv.Self().ID }) {
		if time.Now().After(deadline) {
			t.Fatalf("no registration: registrar %+v, advertiser %+v", registrar.Stats(), adv.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A third node asking the registrar alone gets the advertiser from its table.
	asker := startNet(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ns, err := asker.QueryTopic(ctx, registrar.Self(), "whispermail")
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 1 || ns[0].ID != adv.Self().ID {
		t.Fatalf("registrar answered %v", ns)
	}
}
