package store

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

func testEnode(t *testing.T, i int) *enode.Node {
	k, err := crypto.ToECDSA(crypto.Keccak256([]byte(fmt.Sprint("cache", i))))
	if err != nil {
		t.Fatal(err)
	}
	return enode.NewV4(&k.PublicKey, net.IPv4(127, 0, 0, 1), 30000+i, 30000+i)
}

// TestPeerCache: the peer pool's cache on both backends — newest first, refresh, remove,
// topics apart, bounded per topic, kept across a reopen.
func TestPeerCache(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			cfg := be.config(t)
			s := openStore(t, cfg)
			a, b := testEnode(t, 1), testEnode(t, 2)
			for _, n := range []*enode.Node{a, b} {
				if err := s.AddPeer(ctx, "whisper", n.URLv4()); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.AddPeer(ctx, "whispermail", a.URLv4()); err != nil {
				t.Fatal(err)
			}
			if err := s.AddPeer(ctx, "whisper", "not an enode"); err == nil {
				t.Fatal("bad enode cached")
			}
			got, err := s.Peers(ctx, "whisper", 10)
			if err != nil || len(got) != 2 || got[0] != b.URLv4() {
				t.Fatalf("peers %v %v, want b then a", got, err)
			}
			if err := s.RemovePeer(ctx, "whisper", b.ID()); err != nil {
				t.Fatal(err)
			}
			for i := 10; i < 10+peerCacheLimit+20; i++ {
				if err := s.AddPeer(ctx, "flood", testEnode(t, i).URLv4()); err != nil {
					t.Fatal(err)
				}
			}
			if got, _ := s.Peers(ctx, "flood", 1000); len(got) != peerCacheLimit {
				t.Fatalf("%d cached for one topic, limit %d", len(got), peerCacheLimit)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openStore(t, cfg)
			if got, _ := s.Peers(ctx, "whisper", 10); len(got) != 1 || got[0] != a.URLv4() {
				t.Fatalf("after reopen: %v", got)
			}
			if got, _ := s.Peers(ctx, "whispermail", 10); len(got) != 1 {
				t.Fatalf("whispermail: %v", got)
			}
		})
	}
}

// A wall clock stepped back between two sightings does not reorder the cache.
func TestPeerStamp_monotonic(t *testing.T) {
	var s Store
	now := time.Unix(1_700_000_000, 0)
	a := s.peerStamp(now)
	b := s.peerStamp(now.Add(-time.Hour))
	c := s.peerStamp(now)
	if !(a < b && b < c) {
		t.Fatalf("stamps %d %d %d not increasing", a, b, c)
	}
	if d := s.peerStamp(now.Add(time.Hour)); d != now.Add(time.Hour).UnixNano() {
		t.Fatalf("a clock ahead is taken as it is: %d", d)
	}
}
