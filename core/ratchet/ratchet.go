package ratchet

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	dr "github.com/status-im/doubleratchet"

	"github.com/statusgate/statusgate/core/whisper"
)

// status-go's encryptor limits (protocol/encryption/encryptor.go defaultEncryptorConfig)
// and publisher intervals (protocol/encryption/publisher).
const (
	DefaultMaxSkip                  = 1000
	DefaultMaxKeep                  = 3000
	DefaultMaxMessageKeysPerSession = 2000
	DefaultBundleRefresh            = 24 * time.Hour
	DefaultBundleBackInterval       = 7200 * time.Second
	DefaultContactCodeInterval      = 21600 * time.Second

	// DefaultPrekeysKept is how many of our replaced signed prekeys are kept whatever
	// their age, and DefaultPrekeyRetention how long one beyond those is kept once a
	// newer one replaced it (see Config.PrekeysKept).
	DefaultPrekeysKept     = 1000
	DefaultPrekeyRetention = 30 * 24 * time.Hour

	// DefaultMaxPeers bounds the peer identities whose state one Ratchet keeps (see
	// Config.MaxPeers).
	DefaultMaxPeers = 4096
	// DefaultOldChains is how many previous receiving chains of a session are
	// remembered beyond the newest 16 (see Config.OldChains).
	DefaultOldChains = 1024

	// sessionsKept is how many sessions are kept per peer installation (the ones in use
	// and the retired ones that recognise replayed X3DH headers).
	sessionsKept = 8
	// maxBundles bounds the bundles one ProtocolMessage may carry (status-go sends 1).
	maxBundles = 3
	// bundleBackEntries bounds the bundle-back rate limiter's memory.
	bundleBackEntries = 4096
	// secretCacheEntries bounds the negotiated-secret cache.
	secretCacheEntries = 4096
)

// Config holds a Ratchet's settings. The zero value of every field but Identity,
// InstallationID and Store is a usable default.
type Config struct {
	// Identity is the chat key the Ratchet serves. Required.
	Identity *ecdsa.PrivateKey
	// InstallationID names this installation (a GUID; see LoadInstallationID). Required.
	InstallationID string
	// Store persists every session, bundle and key. Required.
	Store Store

	// MaxSkip is the most message keys one message may skip in a chain (default 1000).
	MaxSkip int
	// MaxKeep: a message key is deleted once this many newer keys were derived in its
	// session (default 3000).
	MaxKeep int
	// MaxMessageKeysPerSession caps the stored keys of a session (default 2000).
	MaxMessageKeysPerSession int
	// BundleRefresh is the age at which our signed prekey is replaced (default 24 h).
	BundleRefresh time.Duration
	// PrekeysKept and PrekeyRetention say which of our replaced signed prekeys are
	// kept, so that a peer still holding an older bundle of ours can start a session
	// from it: the newest PrekeysKept replaced ones whatever their age (default 1000),
	// and beyond those the ones replaced less than PrekeyRetention ago (default 30
	// days; negative: every one, forever). Others are deleted at the next replacement,
	// counted in Stats.PrekeysPruned.
	//
	// Why by count: status-go v0.70.1 replaces its prekey every 24 h too and never
	// deletes the old private keys (MarkBundleExpired only stops offering them), so a
	// bundle of any age works there, and a peer that was silent for months (the app
	// not opened, a phone in a drawer) sends its first message from the bundle it
	// cached then. Deleting by age alone lost that message (it got our current bundle
	// in answer, and only its next message was read). The prekey is replaced only
	// when it is used and older than BundleRefresh (a bundle attached to a message or
	// a contact code, every 6 h while running), so at most once a day: 1000 kept
	// replacements cover a peer silent for 2.7 years of daily use, longer for an
	// identity used less, in at most 1000 rows of about 200 bytes with the index (a
	// 32-byte private key, its public key, our key, version and time): 0.2 MB per
	// identity. Storage is bounded by the count, not by time. What we give up against status-go's "forever": a peer silent longer than
	// that loses its first message (it gets our current bundle in answer, once per
	// BundleBackInterval, and its next message starts a session); what we keep
	// against it: a stolen database opens X3DH first messages made from at most 1000
	// prekeys, not every one ever made.
	PrekeysKept     int
	PrekeyRetention time.Duration
	// BundleBackInterval is the least time between two bundle-back answers to the same
	// peer (default 2 h).
	BundleBackInterval time.Duration
	// ContactCodeInterval is the least time between two contact-code advertisements
	// (default 6 h).
	ContactCodeInterval time.Duration
	// MaxPeers bounds the peer identities whose state (installations, sessions with
	// their message keys, negotiated secret) is kept (default 4096). Eviction policy:
	// when a new identity would pass the bound, the least recently used one that is not
	// pinned is forgotten with all its rows (counted in Stats.PeersEvicted; its
	// negotiated topic is reported in Incoming/Outgoing.Evicted). A peer is pinned once
	// the local user opened (Pin) or started (Encrypt) a conversation with it, and is
	// never evicted: the bound holds for the identities remote parties make us store,
	// and is exceeded only by conversations the user started. When every kept peer is
	// pinned, a new remote identity's bundle is not stored (Stats.PeersRefused): its
	// messages still decrypt in DH mode, and an answer to it starts a conversation.
	MaxPeers int
	// OldChains is how many previous receiving chains of a session are remembered,
	// beyond the newest 16 kept in the session row, so that a replayed message of
	// one is counted as a replay, not as a forgery (default 1024). A replay of a chain
	// older than that cannot be told from a forged ratchet key and counts as Decrypt.
	OldChains int

	// Budgets of the work remote input may make us do (work.go): X3DH responder
	// sessions and bundle writes per sender (default 20 a minute, burst 20) and for all
	// senders (default 600 a minute, burst 200): beyond them an X3DH message is kept
	// for Retry (the Deferred* bounds below) and a bundle is not stored; new
	// negotiated secrets, whose topic key is PBKDF2, for all senders (default 60 a
	// minute, burst 30), deferred beyond. Counted in Stats.Refused* and Deferred*.
	SenderWorkPerMinute, SenderWorkBurst int
	WorkPerMinute, WorkBurst             int
	NewSecretsPerMinute, NewSecretsBurst int
	// Bounds of the queue of X3DH messages the work budgets refused, kept for Retry
	// (defer.go): DeferredMessages messages (default 1024) and DeferredBytes bytes
	// (default 4 MiB) for all senders; one sender at most DeferredPerSender messages
	// (default 16) and the same share of the bytes. Overflow policy:
	// drop-oldest-of-the-largest-sender, counted in Stats.DeferredDropped.
	DeferredMessages, DeferredBytes, DeferredPerSender int

	// Clock is the time source (default time.Now).
	Clock func() time.Time
	// Rand is the entropy source for keys and nonces (default crypto/rand).
	Rand io.Reader
	// Logger receives drops at Debug (default: discard).
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MaxSkip == 0 {
		c.MaxSkip = DefaultMaxSkip
	}
	if c.MaxKeep == 0 {
		c.MaxKeep = DefaultMaxKeep
	}
	if c.MaxMessageKeysPerSession == 0 {
		c.MaxMessageKeysPerSession = DefaultMaxMessageKeysPerSession
	}
	if c.BundleRefresh == 0 {
		c.BundleRefresh = DefaultBundleRefresh
	}
	if c.PrekeysKept == 0 {
		c.PrekeysKept = DefaultPrekeysKept
	}
	if c.PrekeyRetention == 0 {
		c.PrekeyRetention = DefaultPrekeyRetention
	}
	if c.BundleBackInterval == 0 {
		c.BundleBackInterval = DefaultBundleBackInterval
	}
	if c.ContactCodeInterval == 0 {
		c.ContactCodeInterval = DefaultContactCodeInterval
	}
	if c.MaxPeers == 0 {
		c.MaxPeers = DefaultMaxPeers
	}
	if c.OldChains == 0 {
		c.OldChains = DefaultOldChains
	}
	for _, d := range []struct {
		v   *int
		def int
	}{
		{&c.SenderWorkPerMinute, DefaultSenderWorkPerMinute}, {&c.SenderWorkBurst, DefaultSenderWorkBurst},
		{&c.WorkPerMinute, DefaultWorkPerMinute}, {&c.WorkBurst, DefaultWorkBurst},
		{&c.NewSecretsPerMinute, DefaultNewSecretsPerMinute}, {&c.NewSecretsBurst, DefaultNewSecretsBurst},
		{&c.DeferredMessages, DefaultDeferredMessages}, {&c.DeferredBytes, DefaultDeferredBytes},
		{&c.DeferredPerSender, DefaultDeferredPerSender},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	c.DeferredPerSender = min(c.DeferredPerSender, c.DeferredMessages) // a share, at most the whole
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the first unusable setting.
func (c Config) Validate() error {
	switch {
	case c.Identity == nil || c.Identity.D == nil || !validPublic(&c.Identity.PublicKey):
		return fmt.Errorf("ratchet.identity: %w", ErrConfig)
	case validInstallationID(c.InstallationID) != nil:
		return fmt.Errorf("ratchet.installation_id %q: %w", c.InstallationID, ErrConfig)
	case c.Store == nil:
		return fmt.Errorf("ratchet.store: nil: %w", ErrConfig)
	case c.MaxSkip < 0, c.MaxKeep < 0, c.PrekeysKept < 0, c.MaxMessageKeysPerSession < 0, c.MaxPeers < 0, c.OldChains < 0,
		c.SenderWorkPerMinute < 0, c.SenderWorkBurst < 0, c.WorkPerMinute < 0, c.WorkBurst < 0,
		c.NewSecretsPerMinute < 0, c.NewSecretsBurst < 0, c.DeferredMessages < 0, c.DeferredBytes < 0, c.DeferredPerSender < 0:
		return fmt.Errorf("ratchet limits must not be negative: %w", ErrConfig)
	case c.BundleRefresh < 0, c.BundleBackInterval < 0, c.ContactCodeInterval < 0:
		return fmt.Errorf("ratchet intervals must not be negative: %w", ErrConfig)
	}
	return nil
}

// Ratchet is the secure transport of one identity. Its methods are safe for concurrent
// use; they are serialised by one lock (held across Store calls, which it makes in order).
type Ratchet struct {
	cfg      Config
	identity *ecdsa.PrivateKey
	owner    []byte    // compressed identity key: the Store's scope
	crypto   dr.Crypto // drCrypto; an interface so that the vector test can record message keys
	log      *slog.Logger
	stats    counters

	mu sync.Mutex
	// prekey caches our current signed prekey (loaded on first use).
	prekey *Prekey
	// ownDevices caches our other enabled installations for our bundle; nil = reload.
	ownDevices []Device
	ownLoaded  bool
	// bundleBackAt: when each peer (compressed key) last got a bundle-back answer.
	bundleBackAt map[string]time.Time
	// secrets caches negotiated secrets by peer (compressed key).
	secrets map[string]*Secret
	// contactCode caches the symmetric key of our contact-code topic.
	contactCode *whisper.SymKey
	// cache holds rows read from and written to the Store (cache.go).
	cache cache
	// peers remembers recent Store.UsePeer results (bound.go); evicted holds the
	// secrets of evicted peers until the next Receive or Encrypt reports them.
	peers   map[string]peerMark
	evicted []*Secret
	// budgets bound the work remote input makes us do (work.go); deferred keeps the
	// X3DH messages they refused (defer.go); retrying is set while Retry processes one.
	budgets  budgets
	deferred deferQueue
	retrying bool
	// symKeys derives and keeps negotiated-topic keys (its own lock).
	symKeys *symKeys
}

// New returns a Ratchet for cfg. It does no I/O: the Store is first used by the first
// call that needs it.
func New(cfg Config) (*Ratchet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	r := &Ratchet{
		cfg:          cfg,
		identity:     cfg.Identity,
		owner:        crypto.CompressPubkey(&cfg.Identity.PublicKey),
		crypto:       drCrypto{rand: cfg.Rand},
		log:          cfg.Logger.With("installation", cfg.InstallationID),
		bundleBackAt: map[string]time.Time{},
		secrets:      map[string]*Secret{},
		cache:        newCache(),
		peers:        map[string]peerMark{},
		budgets:      newBudgets(cfg),
		deferred:     newDeferQueue(),
	}
	r.symKeys = &symKeys{cache: newLRU[*whisper.SymKey](symKeyCacheEntries), derived: func() { r.stats.topicKeys.Add(1) }}
	return r, nil
}

// InstallationID returns this installation's id.
func (r *Ratchet) InstallationID() string { return r.cfg.InstallationID }

// PublicKey returns the identity the Ratchet serves.
func (r *Ratchet) PublicKey() *ecdsa.PublicKey { return &r.identity.PublicKey }

// NewInstallationID returns a random installation id in the form Status clients use: a
// lowercase version-4 GUID.
func NewInstallationID(rnd io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return "", fmt.Errorf("installation id: %w: %w", ErrRandom, err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// LoadInstallationID returns the installation id stored for identity, creating and
// storing a random one on first use, so that a restart keeps the same installation.
func LoadInstallationID(ctx context.Context, s Store, identity *ecdsa.PublicKey, rnd io.Reader) (string, error) {
	if !validPublic(identity) {
		return "", fmt.Errorf("load installation id: %w", ErrInvalidKey)
	}
	owner := crypto.CompressPubkey(identity)
	id, ok, err := s.InstallationID(ctx, owner)
	if err != nil {
		return "", fmt.Errorf("load installation id: %w: %w", ErrStore, err)
	}
	if ok {
		return id, nil
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	if id, err = NewInstallationID(rnd); err != nil {
		return "", err
	}
	if id, err = s.SetInstallationID(ctx, owner, id); err != nil {
		return "", fmt.Errorf("store installation id: %w: %w", ErrStore, err)
	}
	return id, nil
}

// The three session constructors, each with status-go's options over one step's storage
// (the library's option type is unexported, so the options cannot be built once).

func (r *Ratchet) loadSession(st *step) (dr.Session, error) {
	return dr.Load(sessionID(st.session), st,
		dr.WithKeysStorage(st), dr.WithMaxSkip(r.cfg.MaxSkip), dr.WithMaxKeep(r.cfg.MaxKeep),
		dr.WithMaxMessageKeysPerSession(r.cfg.MaxMessageKeysPerSession), dr.WithCrypto(r.crypto))
}

// responderSession starts Bob's side: our signed prekey is the first ratchet key pair.
func (r *Ratchet) responderSession(st *step, sk []byte, prekey dhPair) (dr.Session, error) {
	return dr.New(sessionID(0), sk, prekey, st,
		dr.WithKeysStorage(st), dr.WithMaxSkip(r.cfg.MaxSkip), dr.WithMaxKeep(r.cfg.MaxKeep),
		dr.WithMaxMessageKeysPerSession(r.cfg.MaxMessageKeysPerSession), dr.WithCrypto(r.crypto))
}

// initiatorSession starts Alice's side: a fresh ratchet key against their signed prekey.
func (r *Ratchet) initiatorSession(st *step, sk, theirPrekey []byte) (dr.Session, error) {
	return dr.NewWithRemoteKey(sessionID(0), sk, theirPrekey, st,
		dr.WithKeysStorage(st), dr.WithMaxSkip(r.cfg.MaxSkip), dr.WithMaxKeep(r.cfg.MaxKeep),
		dr.WithMaxMessageKeysPerSession(r.cfg.MaxMessageKeysPerSession), dr.WithCrypto(r.crypto))
}

// storeErr wraps a Store failure.
func storeErr(what string, err error) error {
	if errors.Is(err, ErrStore) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w: %w", what, ErrStore, err)
}
