package mailserver

import (
	"container/list"
	"fmt"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/p2p/enode"
	"golang.org/x/time/rate"
)

// requestLimiter admits history requests: one token bucket per peer, and one shared by
// all peers, so that a client minting node IDs (each new devp2p key is a new peer, and
// costs nothing) gets no more than the global allowance.
//
// The per-peer buckets are bounded: at most max are kept, and when a new peer needs one
// the least recently used is dropped (eviction policy: LRU). A dropped peer comes back
// with a full burst; that is what the global bucket is for.
type requestLimiter struct {
	perPeer rate.Limit
	burst   int
	max     int

	mu     sync.Mutex
	global *rate.Limiter
	peers  map[enode.ID]*list.Element // of *peerBucket
	lru    list.List                  // front: most recently used
}

type peerBucket struct {
	id enode.ID
	l  *rate.Limiter
}

func newRequestLimiter(perPeer float64, burst int, global float64, globalBurst, max int) *requestLimiter {
	return &requestLimiter{perPeer: rate.Limit(perPeer), burst: burst, max: max,
		global: rate.NewLimiter(rate.Limit(global), globalBurst), peers: map[enode.ID]*list.Element{}}
}

// allow takes a token from id's bucket and one from the global bucket at now, or
// neither; the error says which bucket was empty.
func (rl *requestLimiter) allow(id enode.ID, now time.Time) error {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	var b *peerBucket
	if e := rl.peers[id]; e != nil {
		rl.lru.MoveToFront(e)
		b = e.Value.(*peerBucket)
	} else {
		if len(rl.peers) >= rl.max {
			last := rl.lru.Back()
			rl.lru.Remove(last)
			delete(rl.peers, last.Value.(*peerBucket).id)
		}
		b = &peerBucket{id: id, l: rate.NewLimiter(rl.perPeer, rl.burst)}
		rl.peers[id] = rl.lru.PushFront(b)
	}
	r := b.l.ReserveN(now, 1)
	if !r.OK() || r.DelayFrom(now) > 0 {
		r.CancelAt(now)
		return fmt.Errorf("%w: more than %g per second from this peer (burst %d)", ErrRateLimited, float64(rl.perPeer), rl.burst)
	}
	if !rl.global.AllowN(now, 1) {
		r.CancelAt(now) // the peer keeps its token: the refusal is not its doing
		return fmt.Errorf("%w: more than %g per second from all peers (burst %d)", ErrRateLimited, float64(rl.global.Limit()), rl.global.Burst())
	}
	return nil
}

// tracked reports how many per-peer buckets are kept.
func (rl *requestLimiter) tracked() int {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	return len(rl.peers)
}
