package whisper

import (
	"crypto/ecdsa"
	"fmt"
	"strconv"
	"sync"
)

// Filter is one subscription: the topics it listens on, the key that opens them, and
// conditions on what it accepts.
type Filter struct {
	// Topics must not be empty: an envelope is only tried against filters registered for
	// its topic, never against every key.
	Topics []Topic
	// Exactly one of SymKey and AsymKey.
	SymKey  *SymKey
	AsymKey *ecdsa.PrivateKey
	// Src, when set, accepts only messages signed by this key.
	Src *ecdsa.PublicKey
	// PoW is the minimum envelope PoW; checked before decrypting. 0 accepts any.
	PoW float64
	// AllowP2P accepts envelopes delivered directly by a trusted peer (mailserver code 127).
	AllowP2P bool
	// OmitLocal leaves out the envelopes this node sends itself (Service.Send, so
	// node.Post): they are not decrypted for this filter, nor their signers recovered.
	// For a subscriber that knows what its node posts, such as the gateway, whose node
	// posts only as its own puppets: it would decrypt and recover each of its posts
	// again only to recognise and drop it. Envelopes from peers are opened as usual,
	// whoever signed them.
	OmitLocal bool
	// LazySigner leaves the signer's recovery to the subscriber (ReceivedMessage.Signer),
	// for one that may drop a message before it needs its signer (core/status drops a
	// duplicate, and takes a protobuf message's author from its inner signature): Src
	// stays nil and a message whose signature does not recover is delivered, for Signer
	// to refuse. With Src set, the signer is recovered before delivery all the same.
	LazySigner bool
}

// Match is one filter that opened an envelope, with the message it got.
type Match struct {
	FilterID string
	Message  *ReceivedMessage
}

// Filters is a registry of filters indexed by topic. Safe for concurrent use: Match takes
// a read lock only, and Install/Uninstall replace the per-topic slices instead of editing
// them, so a Match in progress never sees a half-updated list.
type Filters struct {
	mu      sync.RWMutex
	nextID  uint64
	byID    map[string]*installed
	byTopic map[Topic][]*installed // copy-on-write
	// signers recovers the signers of the envelopes Match opens (nil: no cache).
	signers *Signers
}

type installed struct {
	id string
	f  Filter
}

// NewFilters returns an empty registry.
func NewFilters() *Filters {
	return &Filters{byID: make(map[string]*installed), byTopic: make(map[Topic][]*installed)}
}

// Install validates f and registers it, returning its ID. The filter is copied; changing
// f afterwards has no effect.
func (fs *Filters) Install(f Filter) (string, error) {
	if len(f.Topics) == 0 {
		return "", fmt.Errorf("install filter: %w", ErrNoTopics)
	}
	if (f.SymKey == nil) == (f.AsymKey == nil) {
		return "", fmt.Errorf("install filter: %w", ErrNoKey)
	}
	if f.AsymKey != nil {
		if err := validatePrivateKey(f.AsymKey); err != nil {
			return "", fmt.Errorf("install filter: %w", err)
		}
	}
	if f.Src != nil {
		if err := validatePublicKey(f.Src); err != nil {
			return "", fmt.Errorf("install filter: source %w", err)
		}
	}
	f.Topics = dedupTopics(f.Topics)

	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.nextID++
	in := &installed{id: strconv.FormatUint(fs.nextID, 16), f: f}
	fs.byID[in.id] = in
	for _, t := range f.Topics {
		old := fs.byTopic[t]
		next := make([]*installed, len(old), len(old)+1)
		copy(next, old)
		fs.byTopic[t] = append(next, in)
	}
	return in.id, nil
}

// Uninstall removes a filter; ErrUnknownFilter if there is none with that ID.
func (fs *Filters) Uninstall(id string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	in, ok := fs.byID[id]
	if !ok {
		return fmt.Errorf("uninstall filter %q: %w", id, ErrUnknownFilter)
	}
	delete(fs.byID, id)
	for _, t := range in.f.Topics {
		old := fs.byTopic[t]
		next := make([]*installed, 0, len(old))
		for _, o := range old {
			if o != in {
				next = append(next, o)
			}
		}
		if len(next) == 0 {
			delete(fs.byTopic, t)
		} else {
			fs.byTopic[t] = next
		}
	}
	return nil
}

// Len is the number of installed filters.
func (fs *Filters) Len() int {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	return len(fs.byID)
}

// Bloom is the OR of the blooms of every installed topic: what a node listening only for
// its own filters advertises.
func (fs *Filters) Bloom() Bloom {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	var b Bloom
	for t := range fs.byTopic {
		b.Add(t)
	}
	return b
}

// Topics lists the topics with at least one filter.
func (fs *Filters) Topics() []Topic {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	out := make([]Topic, 0, len(fs.byTopic))
	for t := range fs.byTopic {
		out = append(out, t)
	}
	return out
}

// Match returns every filter that accepts env, with the opened message. Only filters
// registered for env's topic are considered; the PoW floor and the p2p flag are checked
// before any decryption; each distinct key decrypts at most once, its message shared
// by every filter holding that key; and the signer is recovered at most once, and only
// when a filter needs it before delivery (one without LazySigner, or with Src). p2p says
// the envelope came by direct delivery (code 127).
func (fs *Filters) Match(env *Envelope, p2p bool) []Match { return fs.match(env, p2p, false) }

// opensLocal reports whether a filter on t opens this node's own envelopes (one without
// OmitLocal): then a post's signature is worth remembering (MessageParams.Signers).
func (fs *Filters) opensLocal(t Topic) bool {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	for _, in := range fs.byTopic[t] {
		if !in.f.OmitLocal {
			return true
		}
	}
	return false
}

// match is Match; local says env is our own Send (see Filter.OmitLocal).
func (fs *Filters) match(env *Envelope, p2p, local bool) []Match {
	fs.mu.RLock()
	candidates := fs.byTopic[env.topic]
	fs.mu.RUnlock()
	if len(candidates) == 0 {
		return nil
	}

	var (
		out    []Match
		opened []openAttempt // per distinct key; a handful at most
	)
	for _, in := range candidates {
		f := &in.f
		if p2p && !f.AllowP2P || local && f.OmitLocal {
			continue
		}
		if f.PoW > 0 && env.PoW() < f.PoW {
			continue
		}
		msg := openOnce(env, f, fs.signers, &opened)
		if msg == nil {
			continue
		}
		if !f.LazySigner || f.Src != nil {
			// Recovered here, before any delivery (match returns before dispatch
			// hands out a message), so setting Src races with no reader.
			src, err := msg.Signer()
			if err != nil {
				continue // as ParsePlaintext refuses it
			}
			msg.Src = src
		}
		if f.Src != nil && !samePublicKey(f.Src, msg.Src) {
			continue
		}
		out = append(out, Match{FilterID: in.id, Message: msg})
	}
	return out
}

type openAttempt struct {
	sym  *SymKey
	asym *ecdsa.PrivateKey
	msg  *ReceivedMessage // nil when the key did not open the envelope
}

// openOnce opens env with f's key, or returns what that key opened before. The first
// filter to open it decides: one that needs the signer before delivery recovers it
// (a message whose signature does not recover is then nil for every filter of that
// key, as before LazySigner); a LazySigner one leaves it to match or the subscriber.
func openOnce(env *Envelope, f *Filter, signers *Signers, opened *[]openAttempt) *ReceivedMessage {
	for _, a := range *opened {
		if (f.SymKey != nil && a.sym != nil && (a.sym == f.SymKey || a.sym.Equal(f.SymKey))) ||
			(f.AsymKey != nil && a.asym != nil && (a.asym == f.AsymKey || a.asym.D.Cmp(f.AsymKey.D) == 0)) {
			return a.msg
		}
	}
	a := openAttempt{sym: f.SymKey, asym: f.AsymKey}
	lazy := f.LazySigner && f.Src == nil
	if f.SymKey != nil {
		a.msg, _ = env.openSymmetric(f.SymKey, signers, lazy)
	} else {
		a.msg, _ = env.openAsymmetric(f.AsymKey, signers, lazy)
	}
	*opened = append(*opened, a)
	return a.msg
}

func samePublicKey(a, b *ecdsa.PublicKey) bool {
	return a != nil && b != nil && a.X.Cmp(b.X) == 0 && a.Y.Cmp(b.Y) == 0
}

func dedupTopics(ts []Topic) []Topic {
	out := make([]Topic, 0, len(ts))
	seen := make(map[Topic]bool, len(ts))
	for _, t := range ts {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}
