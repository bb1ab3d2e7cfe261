package whisper

import (
	"container/heap"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// pooled is one envelope in the pool. seq orders envelopes by arrival, so that a peer's
// broadcast only looks at what arrived since its last one instead of walking the whole
// pool as geth does.
//
// One is held per pooled envelope: its fields are ordered to pack into 40 bytes (a 48-byte
// allocation; 64 with idx an int placed between the bytes).
type pooled struct {
	env *Envelope
	pow float64 // PoW as accepted (time-adjusted when the envelope came from the future)
	seq uint64
	src *poolSource // who brought it in (pool.mu)
	idx int32       // position in src.cheapest (pool.mu); a pool holds far fewer than 2³¹
	// origin is where the envelope came from: 0 our own Send, i+1 a peer of wire i.
	origin uint8
	// evicted is set when the fair-share policy removed the envelope before its expiry.
	// Readers of a since slice, which hold no lock, skip it.
	evicted atomic.Bool
}

// poolSource is what one peer, or our own Send, brought into the pool: the unit of the
// eviction policy's fair shares.
type poolSource struct {
	id       enode.ID
	local    bool
	bytes    int
	cheapest cheapHeap
}

// cheapHeap orders a source's envelopes cheapest first: the lowest PoW (the work paid
// per byte and per second of TTL), and among equals the one that would stay longest.
type cheapHeap []*pooled

func (h cheapHeap) Len() int { return len(h) }
func (h cheapHeap) Less(i, j int) bool {
	if h[i].pow != h[j].pow {
		return h[i].pow < h[j].pow
	}
	return h[i].env.expiry > h[j].env.expiry
}
func (h cheapHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = int32(i), int32(j)
}
func (h *cheapHeap) Push(x any) {
	e := x.(*pooled)
	e.idx = int32(len(*h))
	*h = append(*h, e)
}
func (h *cheapHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.idx = -1
	return e
}

// pool is the envelope store every peer gossips from: deduplicated by hash, bounded in
// bytes (poolCost: an envelope's Size and what holding it costs beyond that), emptied of
// expired envelopes once per ExpirationCycle.
//
// Overflow policy, "largest share first" (issue 15 finding 7: a peer pinning the pool
// with cheap, long-lived envelopes must not make our own posts fail). When an envelope
// does not fit:
//   - ours (Send) evicts peers' envelopes, never ours: the cheapest envelope of the peer
//     holding the most bytes, again until it fits;
//   - a peer's evicts the cheapest envelope of a peer holding strictly more bytes than
//     the sender; when the sender holds the most, it may only replace its own envelopes
//     cheaper than the newcomer; otherwise the newcomer is dropped (ErrPoolFull).
//
// So every peer keeps at least an equal share of the pool against a flooder, and what a
// peer loses first is what it paid least for. "Cheapest" is the lowest PoW, which is
// work per byte per second of TTL. MaxTTL bounds how long any envelope can pin its bytes.
//
// order is append-only between compactions, and compact builds a new slice rather than
// compacting in place, so a slice handed out by since stays valid and immutable after the
// lock is released; evicted envelopes in it are flagged.
type pool struct {
	mu       sync.RWMutex
	byHash   map[common.Hash]*pooled
	order    []*pooled // ascending seq; may hold evicted envelopes until compact
	nextSeq  uint64
	bytes    int // poolCost of the pooled envelopes
	stale    int // poolCost of evicted envelopes still referenced by order
	maxBytes int
	sources  map[enode.ID]*poolSource // peers with envelopes in the pool
	// peak is the most envelopes byHash held since it was last built: Go maps keep
	// their size after deletes, so compact rebuilds byHash once a burst has expired.
	peak  int
	local *poolSource
	// arrived is closed by the next add (nil when nobody waits): the broadcast loops'
	// wake-up for eager forwarding, one close however many peers wait.
	arrived chan struct{}
}

func newPool(maxBytes int) *pool {
	return &pool{byHash: make(map[common.Hash]*pooled), nextSeq: 1, maxBytes: maxBytes,
		sources: make(map[enode.ID]*poolSource), local: &poolSource{local: true}}
}

// poolResult says what add did with an envelope.
type poolResult int

const (
	poolAdded     poolResult = iota // new: dispatch it
	poolDuplicate                   // already pooled
	poolFull                        // no room under the overflow policy: dropped, counted
)

// add pools env, brought by the peer from (of the wire origin-1) or, when local, by our
// own Send. evicted is
// how many envelopes the overflow policy removed to make room.
func (p *pool) add(env *Envelope, pow float64, from enode.ID, local bool, origin uint8) (res poolResult, evicted int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.byHash[env.hash]; ok {
		return poolDuplicate, 0
	}
	size := poolCost(env)
	e := &pooled{env: env, pow: pow, idx: -1, origin: origin}
	if p.bytes+size > p.maxBytes {
		victims := p.makeRoom(e, from, local, size)
		if victims == nil {
			return poolFull, 0
		}
		for _, v := range victims {
			p.evict(v)
		}
		evicted = len(victims)
	}
	src := p.local
	if !local {
		if src = p.sources[from]; src == nil {
			src = &poolSource{id: from}
			p.sources[from] = src
		}
	}
	e.seq, e.src = p.nextSeq, src
	p.nextSeq++
	p.byHash[env.hash] = e
	p.peak = max(p.peak, len(p.byHash))
	p.order = append(p.order, e)
	p.bytes += size
	src.bytes += size
	heap.Push(&src.cheapest, e)
	if p.arrived != nil {
		close(p.arrived)
		p.arrived = nil
	}
	if p.stale > p.maxBytes/8 {
		p.compact(0)
	}
	return poolAdded, evicted
}

// makeRoom chooses the envelopes to evict for newcomer e of size bytes under the
// overflow policy, or returns nil when it may not have room. It pops the victims from
// their sources' heaps and, on failure, pushes them back: the pool is unchanged until
// the caller evicts them.
func (p *pool) makeRoom(e *pooled, from enode.ID, local bool, size int) []*pooled {
	if size > p.maxBytes {
		return nil
	}
	var victims []*pooled
	taken := map[*poolSource]int{} // bytes popped per source so far
	free := p.maxBytes - p.bytes
	var sender *poolSource
	if !local {
		sender = p.sources[from]
	}
	for free < size {
		var victim *pooled
		q := p.largest(taken)
		switch {
		case q == nil:
		case local || q != sender && (sender == nil || q.bytes-taken[q] > sender.bytes-taken[sender]):
			victim = heap.Pop(&q.cheapest).(*pooled)
		case sender != nil && len(sender.cheapest) > 0 && sender.cheapest[0].pow < e.pow:
			victim = heap.Pop(&sender.cheapest).(*pooled)
		}
		if victim == nil {
			for i := len(victims) - 1; i >= 0; i-- {
				heap.Push(&victims[i].src.cheapest, victims[i])
			}
			return nil
		}
		victims = append(victims, victim)
		taken[victim.src] += poolCost(victim.env)
		free += poolCost(victim.env)
	}
	return victims
}

// largest returns the peer source holding the most bytes, less what was taken from
// each; nil when peers hold nothing (only our own envelopes are pooled).
func (p *pool) largest(taken map[*poolSource]int) *poolSource {
	var best *poolSource
	for _, s := range p.sources {
		if len(s.cheapest) == 0 {
			continue
		}
		if best == nil || s.bytes-taken[s] > best.bytes-taken[best] {
			best = s
		}
	}
	return best
}

// evict removes a victim already popped from its source's heap.
func (p *pool) evict(v *pooled) {
	v.evicted.Store(true)
	delete(p.byHash, v.env.hash)
	size := poolCost(v.env)
	p.bytes -= size
	p.stale += size
	p.dropFromSource(v, size)
}

func (p *pool) dropFromSource(v *pooled, size int) {
	s := v.src
	s.bytes -= size
	if !s.local && len(s.cheapest) == 0 {
		delete(p.sources, s.id)
	}
}

// pooledOverhead is what holding an envelope costs beyond its Size: the Envelope and
// pooled structs, the map slot and the places in order and in its source's heap, 224
// bytes by BenchmarkPoolMemory (2026-12-06; 270–310 before the structs were packed),
// counted as 256 for the maps' growth and the peers' known sets. The byte bound counts it: without it, envelopes of
// no data (Size 20) let MaxPoolBytes hold over thirteen times its bytes in memory.
const pooledOverhead = 256

// poolCost is what env counts against MaxPoolBytes. Its bytes are its own (the handler
// detaches envelopes from the packets they came in: detached), so this is what it holds.
func poolCost(env *Envelope) int { return env.Size() + pooledOverhead }

func (p *pool) contains(h common.Hash) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	_, ok := p.byHash[h]
	return ok
}

// since returns the envelopes that arrived after seq, oldest first; evicted ones among
// them are flagged. The slice is shared: callers must not modify it.
func (p *pool) since(seq uint64) []*pooled {
	p.mu.RLock()
	defer p.mu.RUnlock()
	i := sort.Search(len(p.order), func(i int) bool { return p.order[i].seq > seq })
	return p.order[i:len(p.order):len(p.order)]
}

// arrivals returns a channel that is closed once an envelope arrived after seq: at
// once if one already has, else at the next add.
func (p *pool) arrivals(seq uint64) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.nextSeq-1 > seq {
		return closedChan
	}
	if p.arrived == nil {
		p.arrived = make(chan struct{})
	}
	return p.arrived
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// expire drops every envelope whose expiry is before now (Unix seconds) and returns how
// many it dropped.
func (p *pool) expire(now int64) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.compact(now)
}

// compact rebuilds order without the evicted envelopes and those expired before now
// (0: none expire), and returns how many expired.
func (p *pool) compact(now int64) int {
	kept := make([]*pooled, 0, len(p.order))
	expired := 0
	for _, e := range p.order {
		if e.evicted.Load() {
			continue
		}
		if int64(e.env.expiry) < now {
			size := poolCost(e.env)
			delete(p.byHash, e.env.hash)
			p.bytes -= size
			heap.Remove(&e.src.cheapest, int(e.idx))
			p.dropFromSource(e, size)
			expired++
			continue
		}
		kept = append(kept, e)
	}
	if len(kept) < len(p.order) {
		if len(kept) < cap(kept)/4 { // mostly expired: not the old length's capacity
			kept = slices.Clone(kept)
		}
		p.order = kept
	}
	p.stale = 0
	if p.peak >= poolShrinkMin && len(p.byHash) <= p.peak/4 {
		byHash := make(map[common.Hash]*pooled, len(p.byHash))
		for h, e := range p.byHash {
			byHash[h] = e
		}
		p.byHash, p.peak = byHash, len(byHash)
	}
	return expired
}

// poolShrinkMin is the peak below which compact does not rebuild byHash: a small map
// costs little.
const poolShrinkMin = 4096

// stats returns the number of envelopes and their total poolCost.
func (p *pool) stats() (n, bytes int) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.byHash), p.bytes
}
