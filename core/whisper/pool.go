package whisper

import (
	"sort"
	"sync"

	"github.com/ethereum/go-ethereum/common"
)

// pooled is one envelope in the pool. seq orders envelopes by arrival, so that a peer's
// transmission cycle only looks at what arrived since its last cycle instead of walking
// the whole pool as geth does.
type pooled struct {
	env *Envelope
	pow float64 // PoW as accepted (time-adjusted when the envelope came from the future)
	seq uint64
}

// pool is the envelope store every peer gossips from: deduplicated by hash, bounded in
// bytes, emptied of expired envelopes once per ExpirationCycle.
//
// order is append-only between expiries, and expire builds a new slice rather than
// compacting in place, so a slice handed out by since stays valid and immutable after the
// lock is released.
type pool struct {
	mu       sync.RWMutex
	byHash   map[common.Hash]*pooled
	order    []*pooled // ascending seq
	nextSeq  uint64
	bytes    int
	maxBytes int
}

func newPool(maxBytes int) *pool {
	return &pool{byHash: make(map[common.Hash]*pooled), nextSeq: 1, maxBytes: maxBytes}
}

// poolResult says what add did with an envelope.
type poolResult int

const (
	poolAdded     poolResult = iota // new: dispatch it
	poolDuplicate                   // already pooled
	poolFull                        // over maxBytes: dropped (overflow policy: drop newest, counted)
)

func (p *pool) add(env *Envelope, pow float64) poolResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.byHash[env.hash]; ok {
		return poolDuplicate
	}
	if p.bytes+env.Size() > p.maxBytes {
		return poolFull
	}
	e := &pooled{env: env, pow: pow, seq: p.nextSeq}
	p.nextSeq++
	p.byHash[env.hash] = e
	p.order = append(p.order, e)
	p.bytes += env.Size()
	return poolAdded
}

func (p *pool) contains(h common.Hash) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	_, ok := p.byHash[h]
	return ok
}

// since returns the envelopes that arrived after seq, oldest first. The slice is shared:
// callers must not modify it.
func (p *pool) since(seq uint64) []*pooled {
	p.mu.RLock()
	defer p.mu.RUnlock()
	i := sort.Search(len(p.order), func(i int) bool { return p.order[i].seq > seq })
	return p.order[i:len(p.order):len(p.order)]
}

// expire drops every envelope whose expiry is before now (Unix seconds) and returns how
// many it dropped.
func (p *pool) expire(now int64) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	kept := make([]*pooled, 0, len(p.order))
	for _, e := range p.order {
		if int64(e.env.expiry) < now {
			delete(p.byHash, e.env.hash)
			p.bytes -= e.env.Size()
			continue
		}
		kept = append(kept, e)
	}
	dropped := len(p.order) - len(kept)
	if dropped > 0 {
		p.order = kept
	}
	return dropped
}

// stats returns the number of envelopes and their total Size.
func (p *pool) stats() (n, bytes int) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.order), p.bytes
}
