package main

import (
	"bytes"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/statusgate/statusgate"
	"github.com/statusgate/statusgate/core/mailserver"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/identity"
	"github.com/statusgate/statusgate/store"
)

// Config is the root configuration: one section per package that needs settings. Each
// field documents its zero-value default; withDefaults fills them, Validate checks them.
type Config struct {
	// DataDir holds the gateway's state. Default "./data".
	DataDir  string         `yaml:"data_dir"`
	Log      LogConfig      `yaml:"log"`
	Node     NodeConfig     `yaml:"node"`
	Identity IdentityConfig `yaml:"identity"`
	// Store is the database (package store). Default SQLite at "<data_dir>/statusgate.db".
	Store StoreConfig `yaml:"store"`
	// Mailserver archives envelopes and serves history (core/mailserver). Default on.
	Mailserver MailserverConfig `yaml:"mailserver"`
	// Gateway is the bridge side: the secret its puppets' Status keys derive from.
	Gateway GatewayConfig `yaml:"gateway"`
}

// GatewayConfig is the gateway's own state. Only the secret file so far; the gateway
// that uses it is not built yet, so `bridge run` does not read it.
type GatewayConfig struct {
	// SecretFile holds the gateway secret (64 hex characters, mode 0600) from which every
	// puppet's Status key is derived; `bridge init` creates it, nothing else does.
	// Default "<data_dir>/gateway.secret".
	SecretFile string `yaml:"secret_file"`
}

// StoreConfig selects the database (package store).
type StoreConfig struct {
	// Driver is "sqlite" or "postgres". Default "sqlite".
	Driver string `yaml:"driver"`
	// Path is the SQLite database file, created if missing (sqlite only). Default
	// "<data_dir>/statusgate.db".
	Path string `yaml:"path"`
	// DSN is the PostgreSQL connection string, URL or key=value form (postgres only).
	// Required for postgres; no default. It may hold a password and is never logged.
	DSN string `yaml:"dsn"`
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
	// MinPoW is the PoW a request envelope must carry. Default (nil) 0.001; an explicit
	// 0 accepts any.
	MinPoW *float64 `yaml:"min_pow"`
	// RetentionDays drops archived envelopes older than this many days. Default (and 0)
	// 30.
	RetentionDays int `yaml:"retention_days"`
	// DefaultLimit is the page size when a request gives none. Default (and 0) 2000.
	DefaultLimit uint32 `yaml:"default_limit"`
	// MaxLimit caps the envelopes of one page. Default (and 0) 10000.
	MaxLimit uint32 `yaml:"max_limit"`
	// RequestsPerSecond and RequestBurst rate-limit each peer's history requests.
	// Defaults (and 0) 1 and 5.
	RequestsPerSecond float64 `yaml:"requests_per_second"`
	RequestBurst      int     `yaml:"request_burst"`
}

// IdentityConfig is how Status users are named for display (package identity).
type IdentityConfig struct {
	// AliasWords is a directory holding Status's word lists, adjectives.txt and
	// animals.txt, for three-word aliases ("Experienced Splendid Gibbon"). Default empty: no
	// aliases, users are shown by short chat key (0x04261c…88bc6). Validate does no I/O;
	// the directory is read at start-up by namer.
	AliasWords string `yaml:"alias_words"`
}

// NodeConfig is the Status node (core/node): its devp2p host and Whisper service.
type NodeConfig struct {
	// ListenAddr is the TCP address for incoming peers (and UDP for discovery).
	// Default ":30303".
	ListenAddr string `yaml:"listen_addr"`
	// StaticPeers are enode URLs dialled and redialled for the node's lifetime. Default none.
	StaticPeers []string `yaml:"static_peers"`
	// TrustedPeers are enode URLs of mailservers: always admitted, allowed to send direct
	// messages, and dialled like static peers. Default none.
	TrustedPeers []string `yaml:"trusted_peers"`
	// BootNodes are enode URLs for discovery v4, used only with Discovery. Default none.
	BootNodes []string `yaml:"bootnodes"`
	// Discovery turns on node discovery v4. Default false.
	Discovery bool `yaml:"discovery"`
	// MaxPeers bounds connected peers. Default (and 0) 25.
	MaxPeers int `yaml:"max_peers"`
	// MinPoW is the PoW we require and advertise. Default (nil) node.DefaultMinPoW,
	// 0.001; an explicit 0 accepts any PoW.
	MinPoW *float64 `yaml:"min_pow"`
	// KeyFile holds the node key (64 hex characters, mode 0600), created if missing.
	// Default "<data_dir>/nodekey".
	KeyFile string `yaml:"key_file"`
	// Light sends the light-node flag in the Whisper handshake. Default false.
	Light bool `yaml:"light"`
	// Confirmations sends status-go's message confirmations. Default false.
	Confirmations bool `yaml:"confirmations"`
	// SoftTimeErrors keeps peers that send envelopes with bad timestamps (status-go's
	// behaviour) instead of disconnecting them (geth's). Default false.
	SoftTimeErrors bool `yaml:"soft_time_errors"`
	// MaxMessageSize bounds an envelope and a packet, in bytes. Default (and 0)
	// whisper.DefaultMaxMessageSize, 1 MiB.
	MaxMessageSize uint32 `yaml:"max_message_size"`
}

// LogConfig selects the log level and format.
type LogConfig struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is text or json. Default text.
	Format string `yaml:"format"`
}

// loadConfig reads path, or the embedded example when path is empty. Unknown keys are
// errors, so a typo never silently falls back to a default.
func loadConfig(path string) (*Config, error) {
	raw := statusgate.ExampleConfig()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		raw = b
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse config %s: %w", displayPath(path), err)
	}
	c.withDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", displayPath(path), err)
	}
	return &c, nil
}

func displayPath(path string) string {
	if path == "" {
		return "(embedded config.example.yaml)"
	}
	return path
}

func (c *Config) withDefaults() {
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.Node.ListenAddr == "" {
		c.Node.ListenAddr = ":30303"
	}
	if c.Node.MaxPeers == 0 {
		c.Node.MaxPeers = 25
	}
	if c.Node.MinPoW == nil {
		pow := node.DefaultMinPoW
		c.Node.MinPoW = &pow
	}
	if c.Node.KeyFile == "" {
		c.Node.KeyFile = filepath.Join(c.DataDir, "nodekey")
	}
	if c.Node.MaxMessageSize == 0 {
		c.Node.MaxMessageSize = whisper.DefaultMaxMessageSize
	}
	if c.Gateway.SecretFile == "" {
		c.Gateway.SecretFile = filepath.Join(c.DataDir, "gateway.secret")
	}
	c.Store.withDefaults(c.DataDir)
	c.Mailserver.withDefaults()
}

func (s *StoreConfig) withDefaults(dataDir string) {
	if s.Driver == "" {
		s.Driver = store.DriverSQLite
	}
	if s.Driver == store.DriverSQLite && s.Path == "" {
		s.Path = filepath.Join(dataDir, "statusgate.db")
	}
}

func (m *MailserverConfig) withDefaults() {
	if m.Enabled == nil {
		on := true
		m.Enabled = &on
	}
	if m.Password == "" {
		m.Password = mailserver.DefaultPassword
	}
	if m.MinPoW == nil {
		pow := 0.001
		m.MinPoW = &pow
	}
	if m.RetentionDays == 0 {
		m.RetentionDays = 30
	}
	if m.DefaultLimit == 0 {
		m.DefaultLimit = 2000
	}
	if m.MaxLimit == 0 {
		m.MaxLimit = 10000
	}
	if m.RequestsPerSecond == 0 {
		m.RequestsPerSecond = 1
	}
	if m.RequestBurst == 0 {
		m.RequestBurst = 5
	}
}

// Validate checks every field and names the dotted key of the first bad one.
func (c *Config) Validate() error {
	if _, err := c.Log.level(); err != nil {
		return err
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return fmt.Errorf("log.format: %q is not text or json", c.Log.Format)
	}
	if strings.TrimSpace(c.DataDir) == "" {
		return errors.New("data_dir: empty")
	}
	if err := c.Node.Validate(); err != nil {
		return err
	}
	if err := c.Store.Validate(); err != nil {
		return err
	}
	if err := c.Mailserver.Validate(); err != nil {
		return err
	}
	if err := c.Identity.Validate(); err != nil {
		return err
	}
	if strings.TrimSpace(c.Gateway.SecretFile) == "" {
		return errors.New("gateway.secret_file: blank")
	}
	return nil
}

// Validate checks the store section without touching the database.
func (s *StoreConfig) Validate() error {
	switch s.Driver {
	case store.DriverSQLite:
		if strings.TrimSpace(s.Path) == "" {
			return errors.New("store.path: empty for driver sqlite")
		}
		if s.DSN != "" {
			return errors.New("store.dsn: set for driver sqlite (it is for postgres; use store.path)")
		}
	case store.DriverPostgres:
		if strings.TrimSpace(s.DSN) == "" {
			return errors.New("store.dsn: required for driver postgres")
		}
		if s.Path != "" {
			return errors.New("store.path: set for driver postgres (it is for sqlite; use store.dsn)")
		}
	default:
		return fmt.Errorf("store.driver: %q is not %s or %s", s.Driver, store.DriverSQLite, store.DriverPostgres)
	}
	return nil
}

// storeConfig maps the section onto package store's Config.
func (s *StoreConfig) storeConfig() store.Config {
	return store.Config{Driver: s.Driver, Path: s.Path, DSN: s.DSN}
}

// logAttrs describe the database for the log: the SQLite path, or the PostgreSQL host
// and database, never the DSN itself (it may hold a password).
func (s *StoreConfig) logAttrs() []any {
	attrs := []any{"driver", s.Driver}
	if s.Driver == store.DriverSQLite {
		return append(attrs, "path", s.Path)
	}
	if u, err := url.Parse(s.DSN); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		attrs = append(attrs, "host", u.Host, "database", strings.TrimPrefix(u.Path, "/"))
	}
	return attrs
}

// Validate checks the mailserver section, naming the dotted key of the first bad setting.
func (m *MailserverConfig) Validate() error {
	if strings.TrimSpace(m.Password) == "" {
		return errors.New("mailserver.password: blank")
	}
	if pow := *m.MinPoW; math.IsNaN(pow) || math.IsInf(pow, 0) || pow < 0 {
		return fmt.Errorf("mailserver.min_pow: %v is not a finite non-negative number", pow)
	}
	if m.RetentionDays < 0 || m.RetentionDays > 36500 {
		return fmt.Errorf("mailserver.retention_days: %d is not between 1 and 36500", m.RetentionDays)
	}
	if m.DefaultLimit > m.MaxLimit {
		return fmt.Errorf("mailserver.default_limit: %d exceeds mailserver.max_limit %d", m.DefaultLimit, m.MaxLimit)
	}
	if r := m.RequestsPerSecond; math.IsNaN(r) || math.IsInf(r, 0) || r <= 0 {
		return fmt.Errorf("mailserver.requests_per_second: %v is not a finite positive number", r)
	}
	if m.RequestBurst < 1 {
		return fmt.Errorf("mailserver.request_burst: %d is less than 1", m.RequestBurst)
	}
	return nil
}

// serverConfig maps the section onto core/mailserver's ServerConfig; nodeKey also opens
// requests encrypted to the node's public key.
func (m *MailserverConfig) serverConfig(nodeKey *ecdsa.PrivateKey, log *slog.Logger) mailserver.ServerConfig {
	pow := *m.MinPoW
	if pow == 0 {
		pow = -1 // ServerConfig: 0 is its default (0.001), negative disables the check
	}
	return mailserver.ServerConfig{
		Password:          m.Password,
		NodeKey:           nodeKey,
		MinPoW:            pow,
		DefaultLimit:      m.DefaultLimit,
		MaxLimit:          m.MaxLimit,
		Retention:         time.Duration(m.RetentionDays) * 24 * time.Hour,
		RequestsPerSecond: m.RequestsPerSecond,
		RequestBurst:      m.RequestBurst,
		Logger:            log,
	}
}

// Validate checks the identity section without touching the file system.
func (i *IdentityConfig) Validate() error {
	if i.AliasWords != "" && strings.TrimSpace(i.AliasWords) == "" {
		return errors.New("identity.alias_words: blank (leave it out for no aliases)")
	}
	return nil
}

// namer loads the alias word lists, when configured, and returns the namer for display.
// Errors name the key the directory came from.
func (i *IdentityConfig) namer() (*identity.Namer, error) {
	return loadNamer("identity.alias_words", i.AliasWords)
}

// loadNamer reads the word lists in dir (none when dir is empty); key names the setting
// that gave dir, for the error.
func loadNamer(key, dir string) (*identity.Namer, error) {
	if dir == "" {
		return identity.NewNamer(nil), nil
	}
	words, err := identity.LoadAliasWords(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (the lists are status-go's protocol/identity/alias/data.go, one word a line)", key, err)
	}
	return identity.NewNamer(words), nil
}

// Validate checks the node section, naming the dotted key of the first bad setting.
func (n *NodeConfig) Validate() error {
	if pow := *n.MinPoW; math.IsNaN(pow) || math.IsInf(pow, 0) || pow < 0 {
		return fmt.Errorf("node.min_pow: %v is not a finite non-negative number", pow)
	}
	if n.MaxMessageSize > whisper.MaxMessageSize {
		return fmt.Errorf("node.max_message_size: %d exceeds the hard limit %d", n.MaxMessageSize, whisper.MaxMessageSize)
	}
	if strings.TrimSpace(n.KeyFile) == "" {
		return errors.New("node.key_file: empty")
	}
	if err := n.nodeConfig(nil).Validate(); err != nil {
		return fmt.Errorf("node.%w", err)
	}
	return nil
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
		Whisper: whisper.Config{
			MinPoW:         *n.MinPoW,
			MaxMessageSize: n.MaxMessageSize,
			LightNode:      n.Light,
			Confirmations:  n.Confirmations,
			SoftTimeErrors: n.SoftTimeErrors,
		},
		Logger: log,
	}
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
