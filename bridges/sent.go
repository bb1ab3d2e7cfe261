package bridges

import (
	"container/list"
	"sync"
)

// SentKeys remembers the Receipts of a connector's latest successful posts by
// Outbound.Key, for networks that cannot deduplicate by a client transaction ID
// themselves (IRC, a Slack post without one): a Send of a key it holds returns that
// Receipt and posts nothing, so a retry of a post that went out posts it once
// (Connector.Send). It holds the latest n keys; the zero value holds none. Safe for
// concurrent use.
type SentKeys struct {
	mu    sync.Mutex
	n     int
	order *list.List // of string keys, newest first
	byKey map[string]sentKey
}

type sentKey struct {
	r  Receipt
	at *list.Element
}

// NewSentKeys returns a memory of the latest n keys.
func NewSentKeys(n int) *SentKeys {
	return &SentKeys{n: n, order: list.New(), byKey: make(map[string]sentKey, n)}
}

// Get returns the Receipt of key's post, if it is among the latest.
func (s *SentKeys) Get(key string) (Receipt, bool) {
	if s == nil || key == "" {
		return Receipt{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.byKey[key]
	return k.r, ok
}

// Put records that key was posted with Receipt r, forgetting the oldest key when full.
func (s *SentKeys) Put(key string, r Receipt) {
	if s == nil || key == "" || s.n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.byKey[key]; ok {
		s.order.MoveToFront(k.at)
		s.byKey[key] = sentKey{r, k.at}
		return
	}
	s.byKey[key] = sentKey{r, s.order.PushFront(key)}
	if s.order.Len() > s.n {
		delete(s.byKey, s.order.Remove(s.order.Back()).(string))
	}
}
