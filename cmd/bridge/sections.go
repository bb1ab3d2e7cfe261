package main

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/statusgate/statusgate/core/mailserver"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/status"
	"github.com/statusgate/statusgate/core/waku"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/identity"
)

// The sections of the Status node and of the process itself (node, mailserver, identity,
// http, log): each maps onto its package's Config. The root, the gateway and connector
// sections and the checks across sections are in config.go.

// NodeConfig is the Status node (core/node): its devp2p host and its Whisper and Waku
// protocols over one envelope service.
type NodeConfig struct {
	// ListenAddr is the TCP address for incoming peers (and UDP for discovery).
	// Default ":30303".
	ListenAddr string `yaml:"listen_addr"`
	// StaticPeers are enode URLs dialled and redialled for the node's lifetime. Default none.
	StaticPeers []string `yaml:"static_peers"`
	// TrustedPeers are enode URLs of mailservers: always admitted, allowed to send direct
	// messages, and dialled like static peers. Default none.
	TrustedPeers []string `yaml:"trusted_peers"`
	// BootNodes are enode URLs for discovery (v4 or topic discovery), used only when
	// Discovery turns one on. Default none.
	BootNodes []string `yaml:"bootnodes"`
	// Discovery is discovery v4 or topic discovery with the peer pool (node.DiscoveryConfig:
	// v4, topics, register, rendezvous, limits). Default off; `discovery: true` is v4.
	Discovery node.DiscoveryConfig `yaml:"discovery"`
	// MaxPeers bounds connected peers. Default (and 0) 25.
	MaxPeers int `yaml:"max_peers"`
	// MinPoW is the PoW we require and advertise. Default (nil) node.DefaultMinPoW,
	// 0.001; an explicit 0 accepts any PoW.
	MinPoW *float64 `yaml:"min_pow"`
	// KeyFile holds the node key (64 hex characters, mode 0600), created if missing.
	// Default "<data_dir>/nodekey".
	KeyFile string `yaml:"key_file"`
	// Light makes the node a light node: the light flag in its handshakes, and it
	// listens for its own topics only: its bloom filter (shh/6) and topic interest
	// (Waku) are exactly the topics of its chats and 1:1 filters. Default false: a full
	// node, which receives and relays every topic.
	Light bool `yaml:"light"`
	// Protocols are the protocols the node speaks: "shh" (Whisper v6, shh/6) and
	// "waku" (waku/1, and waku/0 for peers offering only it). Default both: envelopes
	// from either generation reach the other through the node.
	Protocols []string `yaml:"protocols"`
	// Limits are per-protocol per-peer limits (node.limits.shh, node.limits.waku:
	// packets_per_second, packet_burst, bytes_per_second, byte_burst,
	// send_packets_per_second, send_packet_burst); the inbound ones are advertised to
	// Waku peers. Default (and zero fields) 100 packets/s (burst 200) and 4 MiB/s in,
	// 50 packets/s (burst 20) out.
	Limits map[string]node.Limits `yaml:"limits"`
	// Waku configures the Waku protocol: versions (default [1, 0]).
	Waku waku.Config `yaml:"waku"`
	// Confirmations sends status-go's message confirmations. Default false.
	Confirmations bool `yaml:"confirmations"`
	// SoftTimeErrors keeps peers that send envelopes with bad timestamps (status-go's
	// behaviour) instead of disconnecting them (geth's). Default false.
	SoftTimeErrors bool `yaml:"soft_time_errors"`
	// MaxMessageSize bounds an envelope and a packet, in bytes. Default (and 0)
	// whisper.DefaultMaxMessageSize, 1 MiB.
	MaxMessageSize uint32 `yaml:"max_message_size"`
	// MailserverRequestForm is how the gateway's catch-up asks mailservers for history:
	// "topics" (status-go's payload with topics: every status-go mailserver from 2020,
	// and ours), "payload" (the late-2019 payload, for older servers) or "struct"
	// (status-go's MessagesRequest, as its Messenger sends). Default "topics".
	MailserverRequestForm string `yaml:"mailserver_request_form"`
	// OutageThreshold is how long the node may be without any peer, or its clock jump
	// ahead (the host slept), before that is an outage, after which the gateway's chats
	// ask their mailservers again and the mailserver syncs the gap from sync_peers
	// (whisper.Config.OutageThreshold), as a Go duration ("10s"). Between
	// minOutageThreshold and maxOutageThreshold. Default (and 0)
	// whisper.DefaultOutageThreshold, 10s.
	OutageThreshold time.Duration `yaml:"outage_threshold"`
	// CatchUpMargin is how far before an outage's start the gateway's chats ask their
	// mailservers from, after the outage (status.HistoryConfig.OutageMargin), as a Go
	// duration ("5m"). At least minHistoryMargin and less than the chats' history window
	// (status.DefaultHistoryWindow). Default (and 0) status.DefaultOutageMargin, 5m.
	CatchUpMargin time.Duration `yaml:"catch_up_margin"`
}

// The bounds of node.outage_threshold. Below the expiry cycle (1 s), whose ticks the
// clock-jump check compares the clock with, tick jitter and a peer's ordinary redial
// would count as outages, each a round of history requests to every mailserver. Above
// the 15 s TTL of Status chat messages, a time alone long enough for envelopes to expire
// in every peer's pool (lost but for mailservers) would go unnoticed.
const (
	minOutageThreshold = whisper.ExpirationCycle
	maxOutageThreshold = status.DefaultTTL * time.Second
)

// devp2pReadTimeout is go-ethereum p2p's frameReadTimeout (unexported there): a peer
// that sends nothing, not even the pong to the ping every 15 s, for this long is
// dropped. A link that dies silently is noticed that late.
const devp2pReadTimeout = 30 * time.Second

// minHistoryMargin is the least node.catch_up_margin and mailserver.sync_margin: how far
// before an outage's start (or the archive's newest envelope) history must be asked
// again so that no Status message is missed. Mailservers answer by envelope timestamp.
// The outage is recorded when the last peer is dropped, up to devp2pReadTimeout after
// the link died; an envelope reaches a node up to its TTL after its timestamp (expired
// ones are dropped), 15 s for Status chat messages (status.DefaultTTL); and a timestamp
// may run up to whisper.DefaultSyncAllowance (10 s) ahead of our clock, so the newest
// archived envelope may be stamped that much after the archive stopped. 55 s in all.
// Shorter, a message posted in the last seconds before the link died is asked for by
// no one. (The 5 min defaults also cover envelopes with TTLs up to the pool's longest.)
const minHistoryMargin = devp2pReadTimeout + (status.DefaultTTL+whisper.DefaultSyncAllowance)*time.Second

func (n *NodeConfig) withDefaults(dataDir string) {
	if n.ListenAddr == "" {
		n.ListenAddr = ":30303"
	}
	if n.MaxPeers == 0 {
		n.MaxPeers = 25
	}
	if n.MinPoW == nil {
		pow := node.DefaultMinPoW
		n.MinPoW = &pow
	}
	if n.KeyFile == "" {
		n.KeyFile = filepath.Join(dataDir, "nodekey")
	}
	if n.MaxMessageSize == 0 {
		n.MaxMessageSize = whisper.DefaultMaxMessageSize
	}
	if n.MailserverRequestForm == "" {
		n.MailserverRequestForm = mailserver.FormTopics.String()
	}
	if n.OutageThreshold == 0 {
		n.OutageThreshold = whisper.DefaultOutageThreshold
	}
	if n.CatchUpMargin == 0 {
		n.CatchUpMargin = status.DefaultOutageMargin
	}
}

// catchUp is the gateway's chats' own catch-up from mailservers (core/status): through
// client, each chat's progress kept in st, from the trusted peers and the mailservers
// nd's discovery finds, after each outage from catch_up_margin before its start.
func (n *NodeConfig) catchUp(client *mailserver.Client, st status.SyncStore, nd *node.Node) status.HistoryConfig {
	return status.HistoryConfig{Client: client, Store: st, OutageMargin: n.CatchUpMargin,
		Mailservers:        func() (trusted, found []string) { return n.TrustedPeers, nd.Mailservers() },
		MailserversChanged: nd.MailserversChanged}
}

// Validate checks the node section, reporting every bad setting (every bad enode URL
// of each list, with its index).
func (n *NodeConfig) Validate() error {
	var errs []error
	if pow := *n.MinPoW; math.IsNaN(pow) || math.IsInf(pow, 0) || pow < 0 {
		errs = append(errs, fmt.Errorf("node.min_pow: %v is not a finite non-negative number", pow))
	}
	if n.MaxMessageSize > whisper.MaxMessageSize {
		errs = append(errs, fmt.Errorf("node.max_message_size: %d exceeds the hard limit %d", n.MaxMessageSize, whisper.MaxMessageSize))
	}
	if strings.TrimSpace(n.KeyFile) == "" {
		errs = append(errs, errors.New("node.key_file: empty"))
	}
	if n.MaxPeers < 0 {
		errs = append(errs, fmt.Errorf("node.max_peers: %d is negative", n.MaxPeers))
	}
	if _, _, err := net.SplitHostPort(n.ListenAddr); err != nil {
		errs = append(errs, fmt.Errorf("node.listen_addr: %w", err))
	}
	if f, err := mailserver.ParseRequestForm(n.MailserverRequestForm); err != nil || f == mailserver.FormBinary {
		errs = append(errs, fmt.Errorf("node.mailserver_request_form: %q: want topics, payload or struct", n.MailserverRequestForm))
	}
	if d := n.OutageThreshold; d < minOutageThreshold || d > maxOutageThreshold {
		errs = append(errs, fmt.Errorf("node.outage_threshold: %v is not between %v (the expiry cycle: shorter, tick jitter and a redial count as outages) and %v (the TTL of Status chat messages: a longer time alone loses envelopes unnoticed)",
			d, minOutageThreshold, maxOutageThreshold))
	}
	if d := n.CatchUpMargin; d < minHistoryMargin {
		errs = append(errs, fmt.Errorf("node.catch_up_margin: %v is less than %v (a dead link is dropped 30 s late, and a Status message arrives up to its 15 s TTL after its timestamp, which may run 10 s fast: a shorter margin misses what was posted just before the outage)",
			d, minHistoryMargin))
	} else if d >= status.DefaultHistoryWindow {
		errs = append(errs, fmt.Errorf("node.catch_up_margin: %v is not less than %v, the chats' history window (a catch-up reaches back no further: every outage would fetch the whole window of every chat)",
			d, status.DefaultHistoryWindow))
	}
	for _, list := range []struct {
		key  string
		urls []string
	}{{"static_peers", n.StaticPeers}, {"trusted_peers", n.TrustedPeers}, {"bootnodes", n.BootNodes}} {
		for i, u := range list.urls {
			if _, err := enode.ParseV4(u); err != nil {
				errs = append(errs, fmt.Errorf("node.%s[%d]: %w", list.key, i, err))
			}
		}
	}
	if len(errs) == 0 {
		// Whatever else core/node checks (it stops at its first problem).
		if err := n.nodeConfig(nil).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("node.%w", err))
		}
	}
	return errors.Join(errs...)
}

// requestForm is the form of the gateway's history requests (validated).
func (n *NodeConfig) requestForm() mailserver.RequestForm {
	f, _ := mailserver.ParseRequestForm(n.MailserverRequestForm)
	return f
}

// nodeConfig maps the section onto core/node's Config.
func (n *NodeConfig) nodeConfig(log *slog.Logger) node.Config {
	return node.Config{
		ListenAddr:   n.ListenAddr,
		StaticPeers:  n.StaticPeers,
		TrustedPeers: n.TrustedPeers,
		BootNodes:    n.BootNodes,
		Discovery:    n.Discovery,
		MaxPeers:     n.MaxPeers,
		ZeroPoW:      *n.MinPoW == 0,
		Protocols:    n.Protocols,
		Limits:       n.Limits,
		Waku:         n.Waku,
		Whisper: whisper.Config{
			MinPoW:          *n.MinPoW,
			MaxMessageSize:  n.MaxMessageSize,
			LightNode:       n.Light,
			TopicBloom:      n.Light,
			Confirmations:   n.Confirmations,
			SoftTimeErrors:  n.SoftTimeErrors,
			OutageThreshold: n.OutageThreshold,
		},
		Logger: log,
	}
}

// MailserverConfig is the node's mailserver (core/mailserver): it archives every
// envelope the node accepts and answers Status clients' history requests.
type MailserverConfig struct {
	// Enabled turns the mailserver on. Default (nil) true; false runs a plain node.
	Enabled *bool `yaml:"enabled"`
	// Password derives the symmetric key requests are encrypted with. Default
	// "status-offline-inbox", what Status clients use. Requests encrypted to the node
	// key are accepted too.
	Password string `yaml:"password"`
	// MinPoW is the PoW a request envelope must carry. Default (nil)
	// mailserver.DefaultRequestPoW, 0.000002: what 2020–2021 Status clients seal their
	// requests at (their node's minimum); an explicit 0 accepts any. The rate limits,
	// not PoW, are the abuse control (docs/security.md).
	MinPoW *float64 `yaml:"min_pow"`
	// RetentionDays drops archived envelopes older than this many days. Default (and 0)
	// 30.
	RetentionDays int `yaml:"retention_days"`
	// MaxArchiveBytes bounds the envelope bytes archived: past it the oldest go first,
	// whatever their age. Default (and 0) 1 GiB; -1: no cap.
	MaxArchiveBytes int64 `yaml:"max_archive_bytes"`
	// DefaultLimit is the page size when a request gives none. Default (and 0) 2000.
	DefaultLimit uint32 `yaml:"default_limit"`
	// MaxLimit caps the envelopes of one page. Default (and 0) 10000.
	MaxLimit uint32 `yaml:"max_limit"`
	// MaxResponseBytes bounds the envelope bytes of one page, whatever its limit.
	// Default (and 0) 8 MiB.
	MaxResponseBytes int `yaml:"max_response_bytes"`
	// RequestsPerSecond and RequestBurst rate-limit each peer's history requests.
	// Defaults (and 0) 2 and 20 (a Messenger pages 1,000 envelopes in 10 requests).
	RequestsPerSecond float64 `yaml:"requests_per_second"`
	RequestBurst      int     `yaml:"request_burst"`
	// GlobalRequestsPerSecond and GlobalRequestBurst rate-limit all peers' requests
	// together (node IDs cost nothing to mint). Defaults (and 0) 20 and 50.
	GlobalRequestsPerSecond float64 `yaml:"global_requests_per_second"`
	GlobalRequestBurst      int     `yaml:"global_request_burst"`
	// SyncPeers are enode URLs of peer mailservers (ours or status-go's): dialled as
	// trusted peers; at start the mailserver fetches from each, with mailserver sync
	// (codes 123/124), what it missed while it was down: from its newest archived
	// envelope (less SyncMargin) to now, or SyncWindowHours back when its archive is
	// empty. It answers their sync requests whether listed or not. Default none.
	SyncPeers []string `yaml:"sync_peers"`
	// SyncWindowHours is how far back a sync goes when the archive is empty (or older).
	// Default (and 0) 24.
	SyncWindowHours int `yaml:"sync_window_hours"`
	// GapSyncInterval is the least time between two of the syncs from SyncPeers that
	// fill an outage's gap (node.outage_threshold): a node whose link flaps syncs once
	// per interval (mailserver.ServerConfig.GapSyncInterval), as a Go duration ("1m").
	// At least minGapSyncInterval, and short enough that a round still reaches back to
	// the outage's start (validateGapSync). Default (and 0)
	// mailserver.DefaultGapSyncInterval, 1m.
	GapSyncInterval time.Duration `yaml:"gap_sync_interval"`
	// SyncMargin is how far before the archive's newest envelope (at start) and before
	// an outage's start (gap rounds) a sync from SyncPeers begins
	// (mailserver.ServerConfig.SyncMargin), as a Go duration ("5m"). At least
	// minHistoryMargin and less than the sync window (validateGapSync). Default (and 0)
	// mailserver.DefaultSyncMargin, 5m.
	SyncMargin time.Duration `yaml:"sync_margin"`
}

// minGapSyncInterval bounds mailserver.gap_sync_interval below: each round asks every
// sync peer for the gap's envelopes (minutes of history, with the sync margin), so a
// link flapping every few seconds must not make peers serve a round each time.
const minGapSyncInterval = 10 * time.Second

func (m *MailserverConfig) withDefaults() {
	if m.Enabled == nil {
		on := true
		m.Enabled = &on
	}
	if m.Password == "" {
		m.Password = mailserver.DefaultPassword
	}
	if m.MinPoW == nil {
		pow := mailserver.DefaultRequestPoW
		m.MinPoW = &pow
	}
	if m.RetentionDays == 0 {
		m.RetentionDays = 30
	}
	if m.MaxArchiveBytes == 0 {
		m.MaxArchiveBytes = mailserver.DefaultMaxArchiveBytes
	}
	if m.DefaultLimit == 0 {
		m.DefaultLimit = 2000
	}
	if m.MaxLimit == 0 {
		m.MaxLimit = 10000
	}
	if m.RequestsPerSecond == 0 {
		m.RequestsPerSecond = 2
	}
	if m.RequestBurst == 0 {
		m.RequestBurst = 20
	}
	if m.MaxResponseBytes == 0 {
		m.MaxResponseBytes = mailserver.DefaultMaxResponseBytes
	}
	if m.GlobalRequestsPerSecond == 0 {
		m.GlobalRequestsPerSecond = 20
	}
	if m.GlobalRequestBurst == 0 {
		m.GlobalRequestBurst = 50
	}
	if m.SyncWindowHours == 0 {
		m.SyncWindowHours = 24
	}
	if m.GapSyncInterval == 0 {
		m.GapSyncInterval = mailserver.DefaultGapSyncInterval
	}
	if m.SyncMargin == 0 {
		m.SyncMargin = mailserver.DefaultSyncMargin
	}
}

// Validate checks the mailserver section, reporting every bad setting.
func (m *MailserverConfig) Validate() error {
	var errs []error
	if strings.TrimSpace(m.Password) == "" {
		errs = append(errs, errors.New("mailserver.password: blank"))
	}
	if pow := *m.MinPoW; math.IsNaN(pow) || math.IsInf(pow, 0) || pow < 0 {
		errs = append(errs, fmt.Errorf("mailserver.min_pow: %v is not a finite non-negative number", pow))
	}
	if m.RetentionDays < 0 || m.RetentionDays > 36500 {
		errs = append(errs, fmt.Errorf("mailserver.retention_days: %d is not between 1 and 36500", m.RetentionDays))
	}
	if m.MaxArchiveBytes < -1 || m.MaxArchiveBytes > 0 && m.MaxArchiveBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("mailserver.max_archive_bytes: %d is not -1 (no cap) or at least 1 MiB", m.MaxArchiveBytes))
	}
	if m.DefaultLimit > m.MaxLimit {
		errs = append(errs, fmt.Errorf("mailserver.default_limit: %d exceeds mailserver.max_limit %d", m.DefaultLimit, m.MaxLimit))
	}
	if r := m.RequestsPerSecond; math.IsNaN(r) || math.IsInf(r, 0) || r <= 0 {
		errs = append(errs, fmt.Errorf("mailserver.requests_per_second: %v is not a finite positive number", r))
	}
	if m.RequestBurst < 1 {
		errs = append(errs, fmt.Errorf("mailserver.request_burst: %d is less than 1", m.RequestBurst))
	}
	if m.MaxResponseBytes < 64<<10 {
		errs = append(errs, fmt.Errorf("mailserver.max_response_bytes: %d is less than 64 KiB", m.MaxResponseBytes))
	}
	if r := m.GlobalRequestsPerSecond; math.IsNaN(r) || math.IsInf(r, 0) || r <= 0 {
		errs = append(errs, fmt.Errorf("mailserver.global_requests_per_second: %v is not a finite positive number", r))
	}
	for i, u := range m.SyncPeers {
		if _, err := enode.ParseV4(u); err != nil {
			errs = append(errs, fmt.Errorf("mailserver.sync_peers[%d]: %w", i, err))
		}
	}
	if m.SyncWindowHours < 0 || m.SyncWindowHours > 24*36500 {
		errs = append(errs, fmt.Errorf("mailserver.sync_window_hours: %d is not between 1 and %d", m.SyncWindowHours, 24*36500))
	}
	if m.GlobalRequestBurst < 1 {
		errs = append(errs, fmt.Errorf("mailserver.global_request_burst: %d is less than 1", m.GlobalRequestBurst))
	}
	if err := m.validateGapSync(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// validateGapSync bounds sync_margin and gap_sync_interval. The margin is at least
// minHistoryMargin and less than the sync window: a round reaches back no further than
// the window, so a margin as long would make every round sync the whole window. The
// interval is at least minGapSyncInterval and at most the window less the margin: a
// round waits up to the interval after the last, then reaches back to the outage's
// start less the margin, but never further than the window, so a longer interval
// would leave the start of an outage unsynced.
func (m *MailserverConfig) validateGapSync() error {
	var errs []error
	window := time.Duration(m.SyncWindowHours) * time.Hour
	marginOK := false
	switch d := m.SyncMargin; {
	case d < minHistoryMargin:
		errs = append(errs, fmt.Errorf("mailserver.sync_margin: %v is less than %v (a dead link is dropped 30 s late, and a Status message arrives up to its 15 s TTL after its timestamp, which may run 10 s fast: a shorter margin misses what was posted just before the gap)",
			d, minHistoryMargin))
	case m.SyncWindowHours < 1:
		// reported as mailserver.sync_window_hours
	case d >= window:
		errs = append(errs, fmt.Errorf("mailserver.sync_margin: %v is not less than %v, mailserver.sync_window_hours (a sync reaches back no further: every round would sync the whole window)",
			d, window))
	default:
		marginOK = true
	}
	d := m.GapSyncInterval
	if d < minGapSyncInterval {
		errs = append(errs, fmt.Errorf("mailserver.gap_sync_interval: %v is less than %v (each round asks every sync peer for minutes of history; a flapping link must not cause one every few seconds)", d, minGapSyncInterval))
	} else if limit := window - m.SyncMargin; marginOK && d > limit {
		errs = append(errs, fmt.Errorf("mailserver.gap_sync_interval: %v exceeds %v, mailserver.sync_window_hours less mailserver.sync_margin (%v) (a round waits up to the interval, and reaches back no further than the window: the outage's start would go unsynced)",
			d, limit, m.SyncMargin))
	}
	return errors.Join(errs...)
}

// serverConfig maps the section onto core/mailserver's ServerConfig; nodeKey also opens
// requests encrypted to the node's public key.
func (m *MailserverConfig) serverConfig(nodeKey *ecdsa.PrivateKey, log *slog.Logger) mailserver.ServerConfig {
	pow := *m.MinPoW
	if pow == 0 {
		pow = -1 // ServerConfig: 0 is its default (0.001), negative disables the check
	}
	return mailserver.ServerConfig{
		Password:                m.Password,
		NodeKey:                 nodeKey,
		MinPoW:                  pow,
		DefaultLimit:            m.DefaultLimit,
		MaxLimit:                m.MaxLimit,
		Retention:               time.Duration(m.RetentionDays) * 24 * time.Hour,
		MaxArchiveBytes:         m.MaxArchiveBytes,
		RequestsPerSecond:       m.RequestsPerSecond,
		RequestBurst:            m.RequestBurst,
		MaxResponseBytes:        m.MaxResponseBytes,
		GlobalRequestsPerSecond: m.GlobalRequestsPerSecond,
		SyncWindow:              time.Duration(m.SyncWindowHours) * time.Hour,
		GapSyncInterval:         m.GapSyncInterval,
		SyncMargin:              m.SyncMargin,
		GlobalRequestBurst:      m.GlobalRequestBurst,
		Logger:                  log,
	}
}

// IdentityConfig is how Status users are named for display (package identity).
type IdentityConfig struct {
	// AliasWords is a directory holding word lists, adjectives.txt and animals.txt
	// (1389 and 1704 words), that replace Status's own in three-word aliases
	// ("Experienced Splendid Gibbon"). Default empty: Status's lists, built in from
	// status-go. Validate does no I/O; the directory is read at start-up by namer.
	AliasWords string `yaml:"alias_words"`
}

// Validate checks the identity section without touching the file system.
func (i *IdentityConfig) Validate() error {
	if i.AliasWords != "" && strings.TrimSpace(i.AliasWords) == "" {
		return errors.New("identity.alias_words: blank (leave it out for Status's own word lists)")
	}
	return nil
}

// namer loads the override word lists, when configured, and returns the namer for display.
// Errors name the key the directory came from.
func (i *IdentityConfig) namer() (*identity.Namer, error) {
	return loadNamer("identity.alias_words", i.AliasWords)
}

// loadNamer reads the word lists in dir (Status's own when dir is empty); key names the
// setting that gave dir, for the error.
func loadNamer(key, dir string) (*identity.Namer, error) {
	if dir == "" {
		return identity.NewNamer(nil), nil
	}
	words, err := identity.LoadAliasWords(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (one word a line, as many as status-go's protocol/identity/alias/data.go has; leave the key out for Status's own lists)", key, err)
	}
	return identity.NewNamer(words), nil
}

// aliasSource says, for the start-up log, where aliases come from.
func aliasSource(dir string) string {
	if dir == "" {
		return "status-go (built in)"
	}
	return dir
}

// HTTPConfig is the admin server: /healthz, /readyz, /metrics, and the route table
// (/v1/routes, for `bridge routes`), which takes a bearer token.
type HTTPConfig struct {
	// Listen is the host:port serving /healthz, /readyz, /metrics and /v1/routes.
	// Default "": no HTTP server.
	Listen string `yaml:"listen"`
	// TokenFile holds the bearer token of /v1/routes (64 hex characters, mode 0600);
	// `bridge init -keys` creates it. Default "<data_dir>/admin.token".
	TokenFile string `yaml:"token_file"`
}

// Validate checks the http section.
func (h *HTTPConfig) Validate() error {
	if strings.TrimSpace(h.TokenFile) == "" {
		return errors.New("http.token_file: blank")
	}
	if h.Listen == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(h.Listen); err != nil {
		return fmt.Errorf("http.listen: %w", err)
	}
	return nil
}

// LogConfig selects the log level and format.
type LogConfig struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is text or json. Default text.
	Format string `yaml:"format"`
}

func (l *LogConfig) withDefaults() {
	if l.Level == "" {
		l.Level = "info"
	}
	if l.Format == "" {
		l.Format = "text"
	}
}

// Validate checks the log section.
func (l LogConfig) Validate() error {
	var errs []error
	if _, err := l.level(); err != nil {
		errs = append(errs, err)
	}
	switch l.Format {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q is not text or json", l.Format))
	}
	return errors.Join(errs...)
}

func (l LogConfig) level() (slog.Level, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(l.Level)); err != nil {
		return 0, fmt.Errorf("log.level: %q is not debug, info, warn or error", l.Level)
	}
	return lv, nil
}

func (l LogConfig) logger(w io.Writer) *slog.Logger {
	lv, _ := l.level() // validated
	opts := &slog.HandlerOptions{Level: lv}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
