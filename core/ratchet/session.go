package ratchet

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	dr "github.com/status-im/doubleratchet"
)

// step is the doubleratchet SessionStorage and KeysStorage of one ratchet operation on one
// session. It serves the state the caller loaded and the session's stored message keys,
// and records what the library writes (the new state, new message keys, the caps), so
// that the operation is committed in one Store call, or not at all when the library
// fails. The library's interfaces carry no context; step holds the operation's.
type step struct {
	ctx     context.Context
	store   Store
	session int64 // 0 for a session not inserted yet

	loaded *dr.State
	saved  *State
	keys   []MessageKey

	maxKeys    int
	deleteUpTo int64
	// unstored: the caller knows the message's key is not stored; Get looks only at
	// the keys of this step.
	unstored bool
}

var (
	_ dr.SessionStorage = (*step)(nil)
	_ dr.KeysStorage    = (*step)(nil)
)

func newStep(ctx context.Context, s Store, session int64, loaded *dr.State) *step {
	return &step{ctx: ctx, store: s, session: session, loaded: loaded, deleteUpTo: -1}
}

// sessionID is the library's id of a session: only passed back to us.
func sessionID(id int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(id)) }

// Save records the state after the operation; the library calls it last.
func (s *step) Save(_ []byte, st *dr.State) error {
	saved := fromDR(st)
	s.saved = &saved
	return nil
}

// Load returns the state the caller loaded from the Store.
func (s *step) Load([]byte) (*dr.State, error) { return s.loaded, nil }

// Get returns a message key of this session: one recorded in this step, else a stored one.
func (s *step) Get(k dr.Key, n uint) (dr.Key, bool, error) {
	for _, mk := range s.keys {
		if uint(mk.N) == n && bytes.Equal(mk.DH, k) {
			return mk.Key, true, nil
		}
	}
	if s.session == 0 || s.unstored || n > 1<<32-1 {
		return nil, false, nil
	}
	mk, ok, err := s.store.MessageKey(s.ctx, s.session, k, uint32(n))
	if err != nil {
		return nil, false, fmt.Errorf("read message key: %w: %w", ErrStore, err)
	}
	return mk, ok, nil
}

// Put records a message key to store.
func (s *step) Put(_ []byte, k dr.Key, n uint, mk dr.Key, seq uint) error {
	s.keys = append(s.keys, MessageKey{DH: bytes.Clone(k), N: uint32(n), Key: bytes.Clone(mk), Seq: uint32(seq)})
	return nil
}

// DeleteMk is not called by the library's encrypt or decrypt; Ratchet.Processed deletes
// keys through the Store directly.
func (s *step) DeleteMk(dr.Key, uint) error { return nil }

// DeleteOldMks records the MaxKeep cap.
func (s *step) DeleteOldMks(_ []byte, until uint) error {
	s.deleteUpTo = int64(until)
	return nil
}

// TruncateMks records the per-session key cap.
func (s *step) TruncateMks(_ []byte, max int) error {
	s.maxKeys = max
	return nil
}

// Count and All are not used by the library's session code.
func (s *step) Count(dr.Key) (uint, error)               { return 0, nil }
func (s *step) All() (map[string]map[uint]dr.Key, error) { return nil, nil }

// fromDR copies the persisted part of a library state.
func fromDR(st *dr.State) State {
	out := State{
		DHr:       bytes.Clone(st.DHr),
		RootKey:   bytes.Clone(st.RootCh.CK),
		SendKey:   bytes.Clone(st.SendCh.CK),
		SendN:     st.SendCh.N,
		RecvKey:   bytes.Clone(st.RecvCh.CK),
		RecvN:     st.RecvCh.N,
		PN:        st.PN,
		Step:      uint32(st.Step),
		KeysCount: uint32(st.KeysCount),
	}
	if st.DHs != nil {
		out.DHsPublic = bytes.Clone(st.DHs.PublicKey())
		out.DHsPrivate = bytes.Clone(st.DHs.PrivateKey())
	}
	return out
}

// toDR rebuilds a library state; options (crypto, limits, key storage) are applied by
// dr.Load.
func toDR(st State) *dr.State {
	s := dr.DefaultState(bytes.Clone(st.RootKey))
	s.DHr = bytes.Clone(st.DHr)
	s.DHs = dhPair{prv: bytes.Clone(st.DHsPrivate), pub: bytes.Clone(st.DHsPublic)}
	s.SendCh.CK = bytes.Clone(st.SendKey)
	s.SendCh.N = st.SendN
	s.RecvCh.CK = bytes.Clone(st.RecvKey)
	s.RecvCh.N = st.RecvN
	s.PN = st.PN
	s.Step = uint(st.Step)
	s.KeysCount = uint(st.KeysCount)
	return &s
}
