package api

import (
	"container/list"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Defaults of RateLimit's zero values.
const (
	DefaultRatePerSecond     = 10.0
	DefaultRateBurst         = 100
	DefaultUserRatePerSecond = 1.0
	DefaultUserRateBurst     = 20
	DefaultMaxUsers          = 10_000
)

// RateLimit bounds what the token's holders may post (issue 15 finding 8). The token
// may post as any api user name, so a per-user limit alone bounds nothing: the whole
// connector has a bucket (PerSecond, Burst) that every POST takes from, and each user
// name a smaller one (UserPerSecond, UserBurst) so that one user of a program serving
// many (a web chat's backend) cannot spend the rest's share. A POST that finds either
// bucket empty takes nothing from the other, is answered 429 with Retry-After, and is
// counted (Connector.RateLimitedRequests) and logged at most once a minute; the caller
// retries with the same id. It is refused before the gateway sees it: programs learn
// to slow down, instead of being told 202 for a message the gateway would drop (the
// gateway's own flood control exempts this network by default for that reason).
type RateLimit struct {
	// PerSecond is the sustained rate of all POSTs together, messages a second.
	// Default 10 (ten times one person's pace; Slack takes one a second per channel).
	PerSecond float64 `yaml:"per_second"`
	// Burst is how many POSTs all users together may send at once. Default 100.
	Burst int `yaml:"burst"`
	// UserPerSecond is one user name's sustained rate. Default 1 (the gateway's default
	// per sender on every other network).
	UserPerSecond float64 `yaml:"user_per_second"`
	// UserBurst is how many POSTs one user name may send at once: a program's report
	// of a few lines fits. Default 20.
	UserBurst int `yaml:"user_burst"`
	// MaxUsers bounds the user buckets kept. Eviction policy: least recently used
	// first; an evicted user starts again with a full bucket, which minting names
	// cannot turn into more than the connector's bucket. Default 10,000.
	MaxUsers int `yaml:"max_users"`
	// Disabled turns the limit off (for load tests; the gateway's flood control, if not
	// exempted, still applies). Default false.
	Disabled bool `yaml:"disabled"`
}

func (r RateLimit) withDefaults() RateLimit {
	if r.PerSecond == 0 {
		r.PerSecond = DefaultRatePerSecond
	}
	if r.Burst == 0 {
		r.Burst = DefaultRateBurst
	}
	if r.UserPerSecond == 0 {
		r.UserPerSecond = DefaultUserRatePerSecond
	}
	if r.UserBurst == 0 {
		r.UserBurst = DefaultUserRateBurst
	}
	if r.MaxUsers == 0 {
		r.MaxUsers = DefaultMaxUsers
	}
	return r
}

func (r RateLimit) validate() error {
	for _, f := range []struct {
		key string
		v   float64
	}{{"per_second", r.PerSecond}, {"user_per_second", r.UserPerSecond}} {
		if f.v < 0 || f.v != f.v || f.v > 1e9 {
			return fmt.Errorf("rate_limit.%s: %v is not a rate", f.key, f.v)
		}
	}
	for _, f := range []struct {
		key string
		v   int
	}{{"burst", r.Burst}, {"user_burst", r.UserBurst}, {"max_users", r.MaxUsers}} {
		if f.v < 0 {
			return fmt.Errorf("rate_limit.%s: %d is negative", f.key, f.v)
		}
	}
	return nil
}

// postLimiter holds the buckets. Its mutex is a leaf: nothing blocks under it.
type postLimiter struct {
	cfg RateLimit

	mu    sync.Mutex
	all   *rate.Limiter
	users map[string]*list.Element // user name → element of order holding *userBucket
	order *list.List               // front: most recently used
	// refused counts the POSTs refused; logged is when a refusal was last logged and
	// unlogged how many were refused since without a log line.
	refused  uint64
	loggedAt time.Time
	unlogged uint64
}

type userBucket struct {
	user   string
	bucket *rate.Limiter
}

func newPostLimiter(cfg RateLimit) *postLimiter {
	cfg = cfg.withDefaults()
	return &postLimiter{cfg: cfg, all: rate.NewLimiter(rate.Limit(cfg.PerSecond), cfg.Burst),
		users: map[string]*list.Element{}, order: list.New()}
}

// refusal is a refused POST: which bucket and when to try again.
type refusal struct {
	scope      string // "user" or "all"
	retryAfter time.Duration
}

// allow takes a token for user from both buckets at now, or none and says why.
func (l *postLimiter) allow(user string, now time.Time) (ok bool, why refusal) {
	if l.cfg.Disabled {
		return true, refusal{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ub := l.user(user)
	ur := ub.bucket.ReserveN(now, 1)
	if d := ur.DelayFrom(now); !ur.OK() || d > 0 {
		ur.CancelAt(now)
		l.refused++
		return false, refusal{"user", d}
	}
	ar := l.all.ReserveN(now, 1)
	if d := ar.DelayFrom(now); !ar.OK() || d > 0 {
		ar.CancelAt(now)
		ur.CancelAt(now)
		l.refused++
		return false, refusal{"all", d}
	}
	return true, refusal{}
}

// user returns user's bucket, making it (and evicting the least recently used one past
// MaxUsers) on first use. Called with l.mu held.
func (l *postLimiter) user(user string) *userBucket {
	if e, ok := l.users[user]; ok {
		l.order.MoveToFront(e)
		return e.Value.(*userBucket)
	}
	ub := &userBucket{user: user, bucket: rate.NewLimiter(rate.Limit(l.cfg.UserPerSecond), l.cfg.UserBurst)}
	l.users[user] = l.order.PushFront(ub)
	if l.order.Len() > max(l.cfg.MaxUsers, 1) {
		old := l.order.Back()
		l.order.Remove(old)
		delete(l.users, old.Value.(*userBucket).user)
	}
	return ub
}

// logRefusal reports whether a refusal at now should be logged (at most one line per
// refusalLogWindow), with how many went unlogged before it.
func (l *postLimiter) logRefusal(now time.Time) (log bool, unlogged uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.loggedAt.IsZero() && now.Sub(l.loggedAt) < refusalLogWindow {
		l.unlogged++
		return false, 0
	}
	unlogged, l.unlogged, l.loggedAt = l.unlogged, 0, now
	return true, unlogged
}

// refusalLogWindow is how often refused POSTs are logged at most.
const refusalLogWindow = time.Minute

func (l *postLimiter) refusedCount() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.refused
}

func (l *postLimiter) userCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.order.Len()
}
