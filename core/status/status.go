package status

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/core/mailserver"
	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/identity"
)

// Transport is what the SDK needs from a Whisper node; *node.Node implements it.
type Transport interface {
	Subscribe(f whisper.Filter) (*whisper.Subscription, error)
	Post(ctx context.Context, p *whisper.MessageParams) (*whisper.Envelope, error)
}

// signerCache is a Transport that recovers signers through a cache (*node.Node: its
// Whisper service's). The client recovers its payloads' inner signatures through the
// same one, so that the node's own posts, read back, cost no recovery at either layer.
type signerCache interface {
	Signers() *whisper.Signers
}

// Limits of the Status specification for public chat envelopes (PROTOCOL.md §3.1).
const (
	DefaultTTL = 15    // seconds
	MinTTL     = 10    // "not lower than 10"
	DefaultPoW = 0.002 // also the maximum: "not larger than 0.002"
	MaxPoW     = 0.002
)

// Config configures a Client. Every zero value means the documented default.
type Config struct {
	// TTL of sent envelopes in seconds. Default 15; at least 10.
	TTL uint32
	// PoW target of sent envelopes. Default 0.002; at most 0.002 (Status nodes require
	// no more, and more only costs the sender time).
	PoW float64
	// WorkTime bounds the PoW search of one envelope. Default 5 s.
	WorkTime time.Duration
	// SendFormat is the payload generation sent when Join is given none. Default both
	// (one Transit and one protobuf envelope, so that 2019 and 2020 clients each see the
	// message once).
	SendFormat chat.SendFormat
	// Namer names authors. Default: three-word aliases from Status's own word lists.
	Namer *identity.Namer
	// Buffer is each chat's message buffer. Default 256. Overflow policy: block (the
	// Whisper subscription, and behind it the node, wait for the reader).
	Buffer int
	// DedupeWindow is how many recent message ids each chat remembers. Default 10000.
	DedupeWindow int
	// Logger receives dropped messages at Debug. Default: discard.
	Logger *slog.Logger
	// Clock is the time used for clocks and timestamps. Default time.Now.
	Clock func() time.Time
	// History enables Chat.SyncHistory (catch-up from a mailserver).
	History HistoryConfig
	// Ratchets gives the secure transport (core/ratchet) of our identities; see
	// StoreRatchets. Direct needs it, and so does the wrapped send format. Default none.
	Ratchets Ratchets
	// Seen remembers the 1:1 messages delivered, across restarts; see SeenStore.
	// Default: in memory only (Config.DedupeWindow), so a DH-mode message re-delivered
	// after a restart is delivered again.
	Seen SeenStore
	// ContactCodeTick is how often a Direct checks whether its contact code is due
	// (the Ratchet's ContactCodeInterval, 6 h, decides). Default 120 s, status-go's
	// publisher tick.
	ContactCodeTick time.Duration
	// RetryTick is how often a Direct's receive loop asks its Ratchet to process the
	// X3DH messages the work budgets deferred (ratchet.Ratchet.Retry; the budgets
	// refill on the Ratchet's clock, and a tick with nothing kept costs a lock). Default
	// 1 s.
	RetryTick time.Duration
	// Identity is the key whose Ratchet stores the bundles learned from public chats
	// (the gateway's own key), so that a first 1:1 message to their authors uses X3DH.
	// Default none: those bundles are verified, not stored.
	Identity *ecdsa.PrivateKey
}

func (c Config) withDefaults() Config {
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.PoW == 0 {
		c.PoW = DefaultPoW
	}
	if c.WorkTime == 0 {
		c.WorkTime = 5 * time.Second
	}
	if c.SendFormat == 0 {
		c.SendFormat = chat.SendBoth
	}
	if c.Buffer == 0 {
		c.Buffer = 256
	}
	if c.DedupeWindow == 0 {
		c.DedupeWindow = 10000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.ContactCodeTick == 0 {
		c.ContactCodeTick = 120 * time.Second
	}
	if c.RetryTick == 0 {
		c.RetryTick = time.Second
	}
	if c.History.Window == 0 {
		c.History.Window = DefaultHistoryWindow
	}
	if c.History.OutageMargin == 0 {
		c.History.OutageMargin = DefaultOutageMargin
	}
	return c
}

// Validate reports the first setting outside the specification's limits.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.TTL < MinTTL {
		return fmt.Errorf("ttl: %d s is below the spec's minimum of %d s", c.TTL, MinTTL)
	}
	if c.PoW < 0 || c.PoW > MaxPoW {
		return fmt.Errorf("pow: %v is outside [0, %v]", c.PoW, MaxPoW)
	}
	if c.Buffer < 0 || c.DedupeWindow < 0 || c.ContactCodeTick < 0 || c.RetryTick < 0 {
		return errors.New("buffer, dedupe_window, contact_code_tick and retry_tick must not be negative")
	}
	if c.History.Window < 0 || c.History.OutageMargin < 0 {
		return errors.New("history window and outage margin must not be negative")
	}
	if c.SendFormat.Wrapped() && c.Ratchets == nil {
		return fmt.Errorf("send_format wrapped: %w", ErrNoRatchets)
	}
	return nil
}

// ErrNoRatchets: a 1:1 conversation or the wrapped send format needs Config.Ratchets.
var ErrNoRatchets = errors.New("no secure transport configured (status.Config.Ratchets)")

// errUnsupportedPayload marks a payload the receiving side does not handle.
var errUnsupportedPayload = errors.New("unsupported payload")

// Client joins chats on one transport. Its methods are safe for concurrent use.
type Client struct {
	cfg Config
	tr  Transport
	log *slog.Logger

	// codec decodes and encodes payloads through the transport's signer cache, or a
	// cache of the client's own.
	codec chat.Codec

	mu      sync.Mutex
	stats   Stats
	memSync *mailserver.MemorySyncStore
}

// ValidateChatName checks a public chat name, bare (no '#'), as Join does: the rules
// of core/chat.ValidateChatName. Errors wrap chat.ErrInvalidChatName.
func ValidateChatName(name string) error { return chat.ValidateChatName(name) }

// New validates cfg and returns a client on tr. It starts nothing.
func New(tr Transport, cfg Config) (*Client, error) {
	if tr == nil {
		return nil, errors.New("status: nil transport")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("status config: %w", err)
	}
	cfg = cfg.withDefaults()
	var signers *whisper.Signers
	if sc, ok := tr.(signerCache); ok {
		signers = sc.Signers()
	}
	if signers == nil {
		signers = whisper.NewSigners(whisper.SignerCacheSize)
	}
	return &Client{cfg: cfg, tr: tr, log: cfg.Logger, codec: chat.Codec{Signers: signers},
		stats: Stats{Dropped: map[string]uint64{}}, memSync: &mailserver.MemorySyncStore{}}, nil
}

// Stats counts what the client delivered and dropped, by reason.
type Stats struct {
	Delivered uint64
	Sent      uint64
	Capped    uint64 // clocks above the cap (delivered, chat clock protected)
	// TimestampReplaced counts delivered messages whose claimed time was further than
	// MaxTimestampDrift from their envelope's, and so replaced by it.
	TimestampReplaced uint64
	// BundlesVerified counts the bundles of wrapped public messages verified without a
	// Ratchet (the client has no Identity: the gateway); with one, its Stats count them.
	BundlesVerified uint64
	Dropped         map[string]uint64 // reason → count; see the Drop* constants
}

// Reasons a received message is dropped.
const (
	DropUnsigned    = "unsigned"     // envelope without signature (§11)
	DropUndecodable = "undecodable"  // payload in no known format, or malformed
	DropWrongChat   = "wrong_chat"   // chat id or message type not this public chat
	DropDuplicate   = "duplicate"    // message id (or its other-format twin) already seen
	DropUnsupported = "unsupported"  // a record we do not show (contact updates, groups…)
	DropBadAuthor   = "author_error" // message id could not be computed
	DropBadBundle   = "bad_bundle"   // a wrapped message whose bundle does not verify against its signer
	// DropBadSignature: the envelope's signature does not recover (the Whisper layer
	// leaves it to the chat, which recovers it only for a message it keeps).
	DropBadSignature = "bad_signature"
	// 1:1 only (Direct):
	DropRatchet        = "ratchet"         // the secure transport refused it (ratchet.Stats says why)
	DropAuthorMismatch = "author_mismatch" // payload signed by another key than the envelope
)

// Stats returns a copy of the counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Dropped = make(map[string]uint64, len(c.stats.Dropped))
	for k, v := range c.stats.Dropped {
		s.Dropped[k] = v
	}
	return s
}

func (c *Client) count(f func(*Stats)) {
	c.mu.Lock()
	f(&c.stats)
	c.mu.Unlock()
}

func (c *Client) drop(chatName, reason string, err error, env []byte) {
	c.count(func(s *Stats) { s.Dropped[reason]++ })
	c.log.Debug("status message dropped", "chat", chatName, "reason", reason, "err", err, "envelope", fmt.Sprintf("%x", env))
}

// Message is one chat message as a person sees it.
type Message struct {
	ID        chat.ID
	Chat      string           // the public chat name; for a 1:1 message the author's chat key (0x04…)
	Author    *ecdsa.PublicKey // who signed it
	AuthorKey string           // 0x04… chat key
	Alias     string           // three-word alias (Config.Namer)
	Clock     uint64
	Timestamp time.Time // the sender's claim (display only), or Sent when the claim is further than MaxTimestampDrift from it
	Sent      time.Time // the envelope's creation time (Whisper), trusted for ordering ties
	Text      string
	// ResponseTo, UnverifiedENSName, ContentType, Sticker and Format carry the rest of
	// the payload.
	ResponseTo string
	// UnverifiedENSName is the ENS name the sender claims. Nothing checks it against
	// ENS (that takes an Ethereum node), so anyone can claim any name: never show it
	// as the author's name (Alias is derived from the key).
	UnverifiedENSName string
	ContentType       chat.ContentType
	Sticker           *chat.Sticker
	Format            chat.Format
	// ClockCapped reports a clock above (now + 31 days) × 100: delivered, but it did not
	// move the chat's clock.
	ClockCapped bool
	// TwinID is the same for the Transit and the protobuf payload of one message
	// (SHA-256 of author, clock and text; not a Status message id): a reader that must
	// recognise a message whichever generation it arrives in (after a restart, from a
	// mailserver) keys on it rather than on ID.
	TwinID chat.ID
	// Installation is the sender's installation id, when the message came in a
	// ProtocolMessage (wrapped public messages, 1:1 messages).
	Installation string
	// Mode is how a 1:1 message was encrypted (DH, X3DH, DR); 0 for public messages.
	Mode ratchet.Mode
}

// SortKey orders messages within a chat (clock, then id).
func (m *Message) SortKey() chat.SortKey { return chat.SortKey{Clock: m.Clock, ID: m.ID} }
