package gateway

import (
	"container/list"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Flood control at ingest (issue 15 finding 8). Every event from a remote sender,
// Status included, takes a token from its sender's bucket; an event without a token is
// dropped, counted (statusgate_events_dropped_total{reason="rate_limited"}) and logged
// once per sender per window. A sender the gateway has no bucket for takes one from its
// network's new-sender bucket first, so that minting identities (Status keys are free)
// gains no more than that. Dropping here, before the ledger, is what keeps one sender
// from filling a slow destination's queue (Slack drains one message a second) until its
// overflow policy fails legitimate messages.

// Defaults of RateLimit.
const (
	DefaultRatePerSecond    = 1.0
	DefaultRateBurst        = 10
	DefaultMaxSenders       = 10_000
	DefaultNewSendersPerMin = 120
	DefaultDropLogWindow    = time.Minute
)

// RateLimit configures the per-sender flood control at ingest. Every zero value means
// the documented default.
type RateLimit struct {
	// PerSecond is each sender's sustained rate, events a second (token bucket). Default
	// DefaultRatePerSecond. Disabled sets no limit.
	PerSecond float64
	// Burst is how many events a sender may send at once after a pause. Default
	// DefaultRateBurst.
	Burst int
	// MaxSenders bounds the buckets kept. Eviction policy: least recently seen first; an
	// evicted sender starts again with a full bucket, paid for from its network's
	// new-sender bucket. Default DefaultMaxSenders.
	MaxSenders int
	// NewSendersPerMinute bounds, per network, how many senders without a bucket may
	// start one each minute (burst the same); the events of others are dropped. Default
	// DefaultNewSendersPerMin.
	NewSendersPerMinute int
	// Exempt lists networks whose senders are not limited. nil means {"api"}: the api
	// connector's token holder may post as any api user, so a per-user limit bounds
	// nothing there; its callers are the operator's own programs.
	Exempt []string
	// Disabled turns flood control off.
	Disabled bool
}

func (r *RateLimit) withDefaults() {
	if r.PerSecond <= 0 {
		r.PerSecond = DefaultRatePerSecond
	}
	if r.Burst <= 0 {
		r.Burst = DefaultRateBurst
	}
	if r.MaxSenders <= 0 {
		r.MaxSenders = DefaultMaxSenders
	}
	if r.NewSendersPerMinute <= 0 {
		r.NewSendersPerMinute = DefaultNewSendersPerMin
	}
	if r.Exempt == nil {
		r.Exempt = []string{"api"}
	}
}

// Drop reasons of the flood control and the author check.
const (
	dropRateLimited = "rate_limited" // the sender's bucket was empty
	dropNewSenders  = "new_senders"  // the network's new-sender bucket was empty
	dropNotAuthor   = "not_author"   // an edit or delete of another's message
)

// limiter holds the buckets. Its mutex is a leaf: nothing blocks under it.
type limiter struct {
	cfg RateLimit
	log *slog.Logger

	mu      sync.Mutex
	senders lru[string, *senderState]  // network + "\x00" + sender ID
	newSend map[string]*rate.Limiter   // network → new-sender bucket (networks: configuration-bounded)
	logged  lru[string, *dropLogState] // drops logged, per sender (also for the author check)
}

type senderState struct {
	bucket *rate.Limiter
	// last is the latest time the bucket was asked at. Times are clamped to it: a
	// bucket asked at an earlier time than before would count the gap again as refill
	// (x/time/rate moves back with it), and Status senders choose their envelopes'
	// times within the TTL, so alternating old and new times would mint tokens.
	last time.Time
}

// dropLogState is when a sender's drops were last logged and how many followed since.
type dropLogState struct {
	at         time.Time
	suppressed int
}

func newLimiter(cfg RateLimit, log *slog.Logger) *limiter {
	cfg.withDefaults()
	return &limiter{cfg: cfg, log: log, senders: newLRU[string, *senderState](cfg.MaxSenders),
		newSend: map[string]*rate.Limiter{}, logged: newLRU[string, *dropLogState](cfg.MaxSenders)}
}

// allow reports whether sender of network may deliver one more event at now, and if
// not, the drop reason.
func (l *limiter) allow(network, sender string, now time.Time) (ok bool, reason string) {
	if l.cfg.Disabled || slices.Contains(l.cfg.Exempt, network) {
		return true, ""
	}
	key := network + "\x00" + sender
	l.mu.Lock()
	defer l.mu.Unlock()
	st, known := l.senders.get(key)
	if !known {
		nb := l.newSend[network]
		if nb == nil {
			per := float64(l.cfg.NewSendersPerMinute) / 60
			nb = rate.NewLimiter(rate.Limit(per), l.cfg.NewSendersPerMinute)
			l.newSend[network] = nb
		}
		if !nb.AllowN(now, 1) {
			return false, dropNewSenders
		}
		st = &senderState{bucket: rate.NewLimiter(rate.Limit(l.cfg.PerSecond), l.cfg.Burst)}
		l.senders.put(key, st)
	}
	if now.Before(st.last) {
		now = st.last
	}
	st.last = now
	if !st.bucket.AllowN(now, 1) {
		return false, dropRateLimited
	}
	return true, ""
}

// dropped logs a dropped event of sender (network, sender ID) once per
// DefaultDropLogWindow: the first drop of a window is logged with how many were not
// logged in the window before.
func (l *limiter) dropped(network, sender, reason string, now time.Time, attrs ...any) {
	key := network + "\x00" + sender
	l.mu.Lock()
	st, ok := l.logged.get(key)
	if ok && now.Sub(st.at) < DefaultDropLogWindow {
		st.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := 0
	if ok {
		suppressed = st.suppressed
	}
	l.logged.put(key, &dropLogState{at: now})
	l.mu.Unlock()
	args := append([]any{"net", network, "sender", sender, "reason", reason,
		"not_logged_before", suppressed, "window", DefaultDropLogWindow}, attrs...)
	l.log.Warn("event dropped (logged once per sender per window)", args...)
}

// lru is a map bounded to max entries that evicts the least recently used one. Not
// safe for concurrent use.
type lru[K comparable, V any] struct {
	max   int
	order *list.List // front: most recent; elements hold *lruEntry
	items map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	key K
	val V
}

func newLRU[K comparable, V any](n int) lru[K, V] {
	return lru[K, V]{max: max(n, 1), order: list.New(), items: map[K]*list.Element{}}
}

func (c *lru[K, V]) get(k K) (V, bool) {
	if e, ok := c.items[k]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*lruEntry[K, V]).val, true
	}
	var zero V
	return zero, false
}

func (c *lru[K, V]) put(k K, v V) {
	if e, ok := c.items[k]; ok {
		e.Value.(*lruEntry[K, V]).val = v
		c.order.MoveToFront(e)
		return
	}
	c.items[k] = c.order.PushFront(&lruEntry[K, V]{key: k, val: v})
	if c.order.Len() > c.max {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.items, old.Value.(*lruEntry[K, V]).key)
	}
}

func (c *lru[K, V]) len() int { return c.order.Len() }
