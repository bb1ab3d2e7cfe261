package mailserver

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/p2p/enode"
)

type memArchiveStub struct{ Archive }

// TestServer_limiterBounded (security finding 6): the per-peer request limiter's map
// stays bounded however many node IDs ask, and minting node IDs does not multiply the
// allowance: 200,000 requests from 200,000 fresh IDs in one instant are mostly refused.
// Before the fix the map held 200,000 limiters and all 200,000 requests were allowed.
func TestServer_limiterBounded(t *testing.T) {
	now := time.Unix(1700000000, 0)
	s, err := NewServer(memArchiveStub{}, ServerConfig{Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	const n = 200000
	allowed := 0
	for range n {
		var id enode.ID
		rand.Read(id[:])
		if s.limiter.allow(id, now) == nil {
			allowed++
		}
	}
	tracked := s.limiter.tracked()
	t.Logf("%d fresh IDs: %d allowed, %d limiters kept", n, allowed, tracked)
	if tracked > 4096 {
		t.Errorf("%d limiters kept for %d peers: unbounded", tracked, n)
	}
	if allowed > 100 {
		t.Errorf("%d of %d requests from minted IDs allowed in one instant", allowed, n)
	}
}
