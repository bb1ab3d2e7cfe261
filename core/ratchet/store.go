package ratchet

import (
	"context"
	"time"
)

// Store is the persistence the ratchet consumes (implemented by package store on SQLite
// and PostgreSQL). Every method is scoped by owner, the compressed (33-byte) public key of
// the identity a Ratchet serves, so one database holds the gateway's sessions and its
// puppets'. Keys are compressed public keys throughout. Methods are called with the
// Ratchet's lock held, one at a time per owner; each must be atomic on its own.
//
// ok results report "not found" without an error; errors are storage failures.
type Store interface {
	// InstallationID returns the owner's installation id, or ok false if none was set.
	InstallationID(ctx context.Context, owner []byte) (id string, ok bool, err error)
	// SetInstallationID records the owner's installation id if none is set yet and
	// returns the one in force (the existing one if another writer won).
	SetInstallationID(ctx context.Context, owner []byte, id string) (string, error)

	// Prekeys returns the owner's own signed prekeys, newest (highest version) first.
	Prekeys(ctx context.Context, owner []byte) ([]Prekey, error)
	// AddPrekey stores a new own signed prekey. Older ones are kept until PrunePrekeys:
	// a peer may still start a session with a bundle it cached.
	AddPrekey(ctx context.Context, owner []byte, p Prekey) error
	// PrunePrekeys deletes the owner's signed prekeys that were superseded (the next
	// version was created) before the given time and are not among the newest keep
	// superseded ones, and returns how many. The newest is never deleted. Sessions
	// started from a deleted prekey keep working: they hold their own state.
	PrunePrekeys(ctx context.Context, owner []byte, keep int, supersededBefore time.Time) (int, error)
	// PrekeyByPublic returns the own signed prekey whose public key is pub.
	PrekeyByPublic(ctx context.Context, owner, pub []byte) (Prekey, bool, error)

	// Devices returns the known installations of identity (a peer, or the owner's other
	// installations), most recently seen (highest bundle timestamp) first.
	Devices(ctx context.Context, owner, identity []byte) ([]Device, error)
	// SaveDevice inserts or replaces the row of (d.Identity, d.InstallationID), keeping
	// its Enabled flag if the row exists, then deletes that identity's rows beyond the
	// keep most recently seen.
	SaveDevice(ctx context.Context, owner []byte, d Device, keep int) error
	// SetDeviceEnabled sets the enabled flag of one installation; ok is false if unknown.
	SetDeviceEnabled(ctx context.Context, owner, identity []byte, installationID string, enabled bool) (bool, error)

	// Sessions returns the sessions with one installation of peer, newest first.
	Sessions(ctx context.Context, owner, peer []byte, installationID string) ([]Session, error)
	// InsertSession stores a new session with its first message keys in one
	// transaction and returns the ID the store assigned. It marks session n.Retire
	// (when not 0) retired, then deletes the installation's sessions beyond the n.Keep
	// newest, with their message keys.
	InsertSession(ctx context.Context, owner []byte, n NewSession) (int64, error)
	// UpdateSession applies one ratchet step in one transaction: the new state, the
	// confirmed flag, new message keys, then the caps (at most u.MaxKeys keys for the
	// session, dropping the lowest Seq first; and every key with Seq ≤ u.DeleteUpTo when
	// u.DeleteUpTo ≥ 0).
	UpdateSession(ctx context.Context, owner []byte, u SessionUpdate) error
	// MessageKey returns the stored message key of (session, dh, n).
	MessageKey(ctx context.Context, session int64, dh []byte, n uint32) ([]byte, bool, error)
	// DeleteMessageKey deletes one message key (no error if it is gone already).
	DeleteMessageKey(ctx context.Context, session int64, dh []byte, n uint32) error

	// AddSecretPeer records that the owner holds a negotiated secret with peer (listen
	// on its topic); it reports whether the peer is new.
	AddSecretPeer(ctx context.Context, owner, peer []byte) (bool, error)
	// SecretPeers lists the peers of AddSecretPeer.
	SecretPeers(ctx context.Context, owner []byte) ([][]byte, error)
	// SetSecretTopicKey keeps the derived key of the negotiated topic with peer (a
	// recorded secret peer; no-op otherwise); SecretTopicKeys returns the kept ones by
	// peer, so that a start derives none of them again.
	SetSecretTopicKey(ctx context.Context, owner, peer, key []byte) error
	SecretTopicKeys(ctx context.Context, owner []byte) (map[string][]byte, error)
	// MarkAgreed records that installation of peer sent us a direct message of protocol
	// version ≥ 1; it reports whether that is new.
	MarkAgreed(ctx context.Context, owner, peer []byte, installationID string) (bool, error)
	// Agreed lists the installations of peer recorded by MarkAgreed.
	Agreed(ctx context.Context, owner, peer []byte) ([]string, error)

	// UsePeer records a use of the owner's state about peer (an identity other than the
	// owner) at u.At, under the bound of u.Max peers per owner. If peer has a row, its
	// last use becomes u.At (and it is pinned if u.Pin): admitted. If not and u.Admit is
	// false, nothing is written: not admitted. Otherwise, in one transaction, when the
	// owner already keeps u.Max peers or more, the least recently used peers that are
	// not pinned are forgotten with every row about them (installations, sessions and
	// their message keys and old chains, agreed installations, negotiated secret) until
	// there is room; if every peer is pinned, a pinned use (u.Pin) is admitted beyond
	// the bound and any other is not. The evicted peers are returned.
	UsePeer(ctx context.Context, owner, peer []byte, u PeerUse) (Admission, error)

	// OldChain reports whether dh is the remote ratchet key of one of the previous
	// receiving chains of session that SessionUpdate.OldChain handed to the store.
	OldChain(ctx context.Context, session int64, dh []byte) (bool, error)

	// ContactCodePublished returns when the owner's contact code was last published (the
	// zero time if never).
	ContactCodePublished(ctx context.Context, owner []byte) (time.Time, error)
	// SetContactCodePublished records a publication time.
	SetContactCodePublished(ctx context.Context, owner []byte, at time.Time) error
}

// Prekey is one of our own signed prekeys.
type Prekey struct {
	Public  []byte // compressed, 33 bytes: the bundle id peers name in X3DH headers
	Private []byte // 32 bytes
	Version uint32 // 1 for the first, +1 at each refresh
	Created time.Time
}

// Device is one installation of an identity as its newest bundle described it.
type Device struct {
	Identity        []byte // compressed identity key
	InstallationID  string
	SignedPreKey    []byte // compressed; empty for an installation known only by id
	PrekeyVersion   uint32
	ProtocolVersion uint32
	Timestamp       int64 // the bundle's timestamp, Unix ns: "most recently seen"
	Enabled         bool  // peers' installations are; our own others start disabled
}

// Session is one X3DH-started Double Ratchet session with one installation of a peer.
type Session struct {
	ID             int64 // assigned by the store
	Peer           []byte
	InstallationID string
	// BundleID is the responder's signed prekey the X3DH used (ours if we responded,
	// theirs if we initiated); DR headers name the session by it.
	BundleID []byte
	// Ephemeral is the X3DH ephemeral key: ours if we initiated (sent in X3DH headers
	// until the peer answers), theirs if we responded (to recognise a replayed header).
	Ephemeral []byte
	Initiator bool
	// Confirmed: the peer answered on this session, so we stop sending X3DH headers.
	Confirmed bool
	// Retired: replaced by a newer X3DH of the same peer installation and bundle; kept to
	// recognise replays of its X3DH header, never used again.
	Retired bool
	SK      []byte // the X3DH shared secret
	Created time.Time
	State   State
}

// State is the persisted Double Ratchet state (status-go's sessions table).
type State struct {
	DHr        []byte // remote ratchet key
	DHsPublic  []byte // own ratchet key pair
	DHsPrivate []byte
	RootKey    []byte
	SendKey    []byte
	SendN      uint32
	RecvKey    []byte
	RecvN      uint32
	PN         uint32
	Step       uint32
	KeysCount  uint32 // the sequence number of the next stored message key
	// PrevDHr holds the remote ratchet keys of the previous receiving chains, newest
	// first, 33 bytes each, at most 16 (not part of the library's state: it tells a
	// replayed message of an older chain from a forged one).
	PrevDHr []byte
}

// MessageKey is a stored receiving message key: skipped, or used and not yet confirmed.
type MessageKey struct {
	DH  []byte // the sender's ratchet key of its chain
	N   uint32
	Key []byte
	Seq uint32 // insertion order within the session
}

// NewSession is a session to insert (Store.InsertSession).
type NewSession struct {
	Session Session
	Keys    []MessageKey
	Retire  int64 // a session this one replaces; 0 for none
	Keep    int   // sessions kept per peer installation, newest first
}

// SessionUpdate is one committed ratchet step.
type SessionUpdate struct {
	Session    int64
	State      State
	Confirmed  bool
	Keys       []MessageKey
	MaxKeys    int
	DeleteUpTo int64 // delete keys with Seq ≤ DeleteUpTo; -1 for none
	// OldChain, when set, is the remote ratchet key of a previous receiving chain that
	// no longer fits in State.PrevDHr: the store remembers it for OldChain, keeping the
	// OldChainsKept most recent ones of the session.
	OldChain      []byte
	OldChainsKept int
}

// PeerUse is one use of the state kept about a peer identity (Store.UsePeer).
type PeerUse struct {
	At time.Time
	// Pin: the local user opened or started a conversation with the peer; a pinned
	// peer is never evicted.
	Pin bool
	// Admit: a peer without a row may be given one (evicting others to make room).
	Admit bool
	// Max bounds the owner's peers; 0 means no bound.
	Max int
}

// Admission is what Store.UsePeer decided.
type Admission struct {
	// Admitted: the peer has a row; its state may be stored.
	Admitted bool
	// Evicted lists the peers forgotten to make room (compressed keys).
	Evicted [][]byte
}
