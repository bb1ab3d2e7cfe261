package mailserver

import (
	"context"
	"sync"
	"time"
)

// SyncState is how far one chat's history has been fetched from mailservers.
type SyncState struct {
	// Covered: everything created before this time has been fetched.
	Covered time.Time
	// Cursor resumes a fetch interrupted inside a range; nil otherwise.
	Cursor []byte
	// To is the upper bound of the interrupted range (set with Cursor).
	To time.Time
}

// SyncStore keeps each chat's SyncState across restarts; package store implements it on
// SQLite and PostgreSQL, MemorySyncStore in memory.
type SyncStore interface {
	LoadSync(ctx context.Context, chat string) (SyncState, bool, error)
	SaveSync(ctx context.Context, chat string, st SyncState) error
}

// MemorySyncStore is a SyncStore that forgets on restart. The zero value is ready.
type MemorySyncStore struct {
	mu sync.Mutex
	m  map[string]SyncState
}

// LoadSync implements SyncStore.
func (s *MemorySyncStore) LoadSync(_ context.Context, chat string) (SyncState, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[chat]
	return st, ok, nil
}

// SaveSync implements SyncStore.
func (s *MemorySyncStore) SaveSync(_ context.Context, chat string, st SyncState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]SyncState{}
	}
	s.m[chat] = st
	return nil
}
