package ratchet

import (
	"container/list"
	"fmt"
	"sync"

	"golang.org/x/time/rate"

	"github.com/statusgate/statusgate/core/whisper"
)

// Budgets for the work remote input makes us do (issue 14 follow-up). Keys are free to
// mint, so every bound on a remote identity has a global bound beside it.
//
// What remote input can make a Ratchet compute, and how each is bounded:
//   - a negotiated topic's key (PBKDF2, 65,356 rounds: milliseconds each), for every
//     identity that agrees a secret with us: the global secret budget
//     (NewSecretsPerMinute, NewSecretsBurst). Overflow policy: deferred. The secret is
//     not recorded and not reported, so nobody derives its key; the peer uses the topic
//     only once we have sent it a message (status-go's Agreed rule), and our own send
//     records it (not budgeted: the local user's work). A peer refused now is admitted
//     by a later message of its within budget. A bundle-back answer, which would make
//     the peer use the topic, is not sent for a peer whose secret was deferred.
//   - an X3DH responder session (three ECDH, a session row written, the previous one
//     retired) for every new ephemeral key a known installation sends, and the rows a
//     bundle makes us write (a new identity admitted, maybe another evicted, its
//     installations saved): the per-sender and global work budgets (SenderWorkPerMinute,
//     SenderWorkBurst; WorkPerMinute, WorkBurst). Overflow policy: deferred. An X3DH
//     message over budget (or whose installation is unknown because the budget
//     refused to store the bundle it carried) is kept in the bounded deferred queue
//     (defer.go: ErrDeferred) and processed by Retry once the budgets allow; if the
//     peer's next message starts the session first, the kept one decrypts then with
//     its skipped key. A bundle over budget is verified and not stored, and the
//     message goes on (its DH copy still decrypts).
//   - the derived negotiated-topic keys are kept in a bounded LRU (symKeyCacheEntries),
//     so that a peer we talk to is not derived again at every message we send it.
//
// Not budgeted, because Whisper's per-peer limits already bound them to the order of
// what each envelope costs before the Ratchet sees it (an ECIES decryption and a
// signature recovery): a DH-mode copy's one ECDH, and a bundle's signature recovery
// (at most maxBundles per message).
const (
	DefaultSenderWorkPerMinute = 20
	DefaultSenderWorkBurst     = 20
	DefaultWorkPerMinute       = 600
	DefaultWorkBurst           = 200
	DefaultNewSecretsPerMinute = 60
	DefaultNewSecretsBurst     = 30

	// workSenders bounds the per-sender buckets; the least recently used is forgotten
	// (a sender forgotten starts again with a full bucket: the global budget stands).
	workSenders = 4096
	// symKeyCacheEntries bounds the derived negotiated-topic keys kept; least recently
	// used first out.
	symKeyCacheEntries = 1024
)

// Work is a kind of remote-triggered work a budget may refuse.
type Work int

const (
	// WorkX3DH: a responder X3DH session start.
	WorkX3DH Work = iota
	// WorkBundle: the rows a bundle makes us write.
	WorkBundle
	// WorkSecret: a new negotiated secret, whose topic key is PBKDF2.
	WorkSecret
	numWork
)

func (w Work) String() string {
	switch w {
	case WorkX3DH:
		return "x3dh"
	case WorkBundle:
		return "bundle"
	case WorkSecret:
		return "secret"
	}
	return fmt.Sprintf("work(%d)", int(w))
}

// lru is a bounded map with least-recently-used eviction. Not safe for concurrent use.
type lru[V any] struct {
	max   int
	order *list.List // front: most recent; values are *lruEntry[V]
	items map[string]*list.Element
}

type lruEntry[V any] struct {
	key string
	val V
}

func newLRU[V any](max int) *lru[V] {
	return &lru[V]{max: max, order: list.New(), items: map[string]*list.Element{}}
}

func (c *lru[V]) get(k string) (V, bool) {
	if e, ok := c.items[k]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*lruEntry[V]).val, true
	}
	var zero V
	return zero, false
}

func (c *lru[V]) put(k string, v V) {
	if e, ok := c.items[k]; ok {
		e.Value.(*lruEntry[V]).val = v
		c.order.MoveToFront(e)
		return
	}
	if c.order.Len() >= c.max {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.items, old.Value.(*lruEntry[V]).key)
	}
	c.items[k] = c.order.PushFront(&lruEntry[V]{key: k, val: v})
}

func (c *lru[V]) len() int { return c.order.Len() }

// budgets holds the token buckets. Guarded by Ratchet.mu.
type budgets struct {
	senders *lru[*rate.Limiter]
	global  *rate.Limiter
	secrets *rate.Limiter
	perMin  float64
	burst   int
}

func perMinute(n int) rate.Limit { return rate.Limit(float64(n) / 60) }

func newBudgets(c Config) budgets {
	return budgets{
		senders: newLRU[*rate.Limiter](workSenders),
		global:  rate.NewLimiter(perMinute(c.WorkPerMinute), c.WorkBurst),
		secrets: rate.NewLimiter(perMinute(c.NewSecretsPerMinute), c.NewSecretsBurst),
		perMin:  float64(c.SenderWorkPerMinute),
		burst:   c.SenderWorkBurst,
	}
}

// allowWork charges one unit of w to peer (compressed key) and to the global budget,
// and reports whether both had it; a refusal is counted and logged. Caller holds r.mu.
func (r *Ratchet) allowWork(peer []byte, w Work) bool {
	now := r.cfg.Clock()
	b := &r.budgets
	var ok bool
	if w == WorkSecret {
		ok = b.secrets.AllowN(now, 1)
	} else {
		l, found := b.senders.get(string(peer))
		if !found {
			l = rate.NewLimiter(rate.Limit(b.perMin/60), b.burst)
			b.senders.put(string(peer), l)
		}
		// Both are spent only when both have a token: a refusal by one does not spend
		// the other's.
		if ok = l.TokensAt(now) >= 1 && b.global.TokensAt(now) >= 1; ok {
			l.AllowN(now, 1)
			b.global.AllowN(now, 1)
		}
	}
	if !ok && !r.retrying { // a retry refused again was counted when it came
		r.stats.refused[w].Add(1)
		r.log.Debug("ratchet work refused: budget spent", "work", w.String(), "peer", fmt.Sprintf("%x", peer[:min(len(peer), 6)]))
	}
	return ok
}

// workAvailable returns the tokens the global budget and peer's (compressed key) hold
// now, without spending any. Caller holds r.mu.
func (r *Ratchet) workAvailable(peer []byte) (global, sender float64) {
	now := r.cfg.Clock()
	b := &r.budgets
	sender = float64(b.burst) // a sender without a bucket starts with a full one
	if l, ok := b.senders.get(string(peer)); ok {
		sender = l.TokensAt(now)
	}
	return b.global.TokensAt(now), sender
}

// symKeys derives negotiated-topic keys (PBKDF2) and keeps the last symKeyCacheEntries.
// It has a lock of its own: Secret.SymKey is called with and without Ratchet.mu.
// Derivations are serialised, which also bounds the CPU they take at once.
type symKeys struct {
	mu      sync.Mutex
	cache   *lru[*whisper.SymKey]
	derived func() // counts a derivation
}

func (s *symKeys) get(name string) (*whisper.SymKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.cache.get(name); ok {
		return k, nil
	}
	k, err := whisper.SymKeyFromPassword(name)
	if err != nil {
		return nil, err
	}
	s.derived()
	s.cache.put(name, k)
	return k, nil
}
