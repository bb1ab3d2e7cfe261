package whisper

import (
	"fmt"
	"sync"
)

// Subscription receives the messages that its filter opens. Messages arrive on C in the
// order the workers finish them (envelopes from different peers may interleave).
type Subscription struct {
	id string
	s  *Service
	ch chan *ReceivedMessage

	mu     sync.RWMutex // held for reading while delivering, for writing while closing
	closed bool
	quit   chan struct{}
	once   sync.Once
}

// Subscribe installs f and returns a subscription for the messages it opens, including
// those we send ourselves. The buffer holds Config.QueueSize messages; when it is full,
// delivery blocks (overflow policy: backpressure), so readers must keep up. With
// TopicBloom set, the advertised bloom and topic interest widen to f's topics.
func (s *Service) Subscribe(f Filter) (*Subscription, error) {
	id, err := s.filters.Install(f)
	if err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	sub := &Subscription{id: id, s: s, ch: make(chan *ReceivedMessage, s.cfg.QueueSize), quit: make(chan struct{})}
	s.subMu.Lock()
	s.subs[id] = sub
	s.subMu.Unlock()
	if s.cfg.TopicBloom {
		s.SetTopics(s.filters.Topics())
	}
	return sub, nil
}

// ID is the filter ID.
func (sub *Subscription) ID() string { return sub.id }

// C delivers opened messages. It is closed after Unsubscribe, or when the service stops.
func (sub *Subscription) C() <-chan *ReceivedMessage { return sub.ch }

// Unsubscribe removes the filter and closes C. Safe to call more than once.
func (sub *Subscription) Unsubscribe() {
	sub.once.Do(func() {
		s := sub.s
		_ = s.filters.Uninstall(sub.id) // only fails if already gone
		s.subMu.Lock()
		delete(s.subs, sub.id)
		s.subMu.Unlock()
		sub.close()
		if s.cfg.TopicBloom {
			s.SetTopics(s.filters.Topics())
		}
	})
}

func (sub *Subscription) close() {
	close(sub.quit) // releases a delivery blocked on a full buffer
	sub.mu.Lock()
	sub.closed = true
	close(sub.ch)
	sub.mu.Unlock()
}

// deliver blocks until the message is buffered, the subscription closes, or stop closes.
func (sub *Subscription) deliver(m *ReceivedMessage, stop <-chan struct{}) {
	sub.mu.RLock()
	defer sub.mu.RUnlock()
	if sub.closed {
		return
	}
	select {
	case sub.ch <- m:
	case <-sub.quit:
	case <-stop:
	}
}

func (s *Service) closeSubscriptions() {
	s.subMu.Lock()
	subs := s.subs
	s.subs = make(map[string]*Subscription)
	s.subMu.Unlock()
	for _, sub := range subs {
		sub.once.Do(sub.close)
	}
}
