package main

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/statusgate/statusgate"
	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/bridges/irc"
	"github.com/statusgate/statusgate/bridges/matrix"
	"github.com/statusgate/statusgate/bridges/slack"
	"github.com/statusgate/statusgate/core/gateway"
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
	// Gateway is the bridge side (core/gateway): the secret its puppets' Status keys
	// derive from, the routes, and delivery settings.
	Gateway GatewayConfig `yaml:"gateway"`
	// HTTP serves /healthz, /readyz and /metrics. Default off.
	HTTP HTTPConfig `yaml:"http"`
	// Connectors configures the connectors of the bridged networks, one section each.
	Connectors ConnectorsConfig `yaml:"connectors"`
}

// GatewayConfig is the gateway's section; gatewayConfig maps it onto core/gateway's
// Config.
type GatewayConfig struct {
	// SecretFile holds the gateway secret (64 hex characters, mode 0600) from which every
	// puppet's Status key is derived; `bridge init` creates it, nothing else does.
	// Default "<data_dir>/gateway.secret".
	SecretFile string `yaml:"secret_file"`
	// NickFormat prefixes what a puppet posts into Status: {nick} is the sender's display
	// name, {network} the origin network, {channel} the origin channel ID. Default (and
	// "") gateway.DefaultNickFormat, "[{network}] <{nick}> ".
	NickFormat string `yaml:"nick_format"`
	// NoNick posts remote users' text without the prefix. Default false.
	NoNick bool `yaml:"no_nick"`
	// Accounts maps a network to the gateway's account name on it, part of every puppet
	// ID of that network (changing it changes the network's puppet keys). Default none:
	// the account is the network name.
	Accounts map[string]string `yaml:"accounts"`
	// QueueLimit bounds each destination's pending deliveries; beyond it the oldest are
	// marked failed, visibly (gateway.Config.QueueLimit). Default (and 0)
	// gateway.DefaultQueueLimit, 10000.
	QueueLimit int `yaml:"queue_limit"`
	// MaxAttempts is how often a delivery is tried before it ends failed. Default (and 0)
	// gateway.DefaultMaxAttempts, 12.
	MaxAttempts int `yaml:"max_attempts"`
	// RetryMin and RetryMax bound the exponential back-off between attempts, as Go
	// durations ("1s", "5m"). Defaults (and 0) 1s and 5m.
	RetryMin time.Duration `yaml:"retry_min"`
	RetryMax time.Duration `yaml:"retry_max"`
	// AttemptTimeout bounds one delivery attempt. Default (and 0) 30s.
	AttemptTimeout time.Duration `yaml:"attempt_timeout"`
	// Routes are the bridged conversations. Default none: the gateway bridges nothing.
	Routes []RouteConfig `yaml:"routes"`
}

// RouteConfig is one bridged conversation: a Status public chat and its channels.
type RouteConfig struct {
	// Chat is the Status public chat, bare name ("status", no '#'). Required.
	Chat string `yaml:"chat"`
	// Channels are the remote channels mirroring the chat. Default none.
	Channels []RouteChannelConfig `yaml:"channels"`
}

// RouteChannelConfig is one channel of a route.
type RouteChannelConfig struct {
	// Channel is the channel ID, "network:local" as the network's connector builds it
	// ("api:status"). Required; its network needs an enabled connector.
	Channel string `yaml:"channel"`
	// Direction is both, in (channel to chat only) or out (chat to channel only).
	// Default (and "") both.
	Direction string `yaml:"direction"`
}

// HTTPConfig is the health and metrics server.
type HTTPConfig struct {
	// Listen is the host:port serving /healthz, /readyz and /metrics. Default "": no
	// HTTP server.
	Listen string `yaml:"listen"`
}

// ConnectorsConfig holds one section per connector.
type ConnectorsConfig struct {
	// API is the HTTP API connector (network "api").
	API APIConnectorConfig `yaml:"api"`
	// IRC lists IRC networks, one relay connection each (bridges/irc). Default none.
	IRC []IRCConnectorConfig `yaml:"irc"`
	// Slack lists Slack workspaces, one app each (bridges/slack). Default none.
	Slack []SlackConnectorConfig `yaml:"slack"`
	// Matrix lists Matrix homeservers, one application service each (bridges/matrix;
	// its Config's yaml keys). rooms defaults to one portal room per route channel of
	// the network. Default none.
	Matrix []matrix.Config `yaml:"matrix"`
}

// matrixName is the network name of a Matrix section: its name, default "matrix".
func matrixName(c *matrix.Config) string {
	if c.Name == "" {
		return matrix.DefaultName
	}
	return c.Name
}

// withDefaults gives each Matrix section without rooms one portal room per route
// channel of its network.
func (c *ConnectorsConfig) withDefaults(routes []RouteConfig) {
	for i := range c.Matrix {
		m := &c.Matrix[i]
		if len(m.Rooms) > 0 {
			continue
		}
		for _, r := range routes {
			for _, ch := range r.Channels {
				if id := bridges.ChannelID(ch.Channel); id.Network() == matrixName(m) && id.Local() != "" {
					m.Rooms = append(m.Rooms, matrix.RoomConfig{Chat: id.Local()})
				}
			}
		}
	}
}

// SlackConnectorConfig is one Slack workspace (bridges/slack.Config; see there). Its
// channels appear in routes as "<name>:<channel ID>". The tokens are secrets: keep this
// file 0600.
type SlackConnectorConfig struct {
	Name           string   `yaml:"name"`
	BotToken       string   `yaml:"bot_token"`
	AppToken       string   `yaml:"app_token"`
	APIURL         string   `yaml:"api_url"`
	Channels       []string `yaml:"channels"`
	IconURLBase    string   `yaml:"icon_url_base"`
	RatePerChannel float64  `yaml:"rate_per_channel"`
	Burst          int      `yaml:"burst"`
	// Transport is "socket" (Socket Mode, default) or "http" (the Events API on Listen
	// at EventsPath, signed with SigningSecret, a secret).
	Transport     string `yaml:"transport"`
	SigningSecret string `yaml:"signing_secret"`
	Listen        string `yaml:"listen"`
	EventsPath    string `yaml:"events_path"`
}

// slackConfig maps the section onto bridges/slack's Config.
func (c *SlackConnectorConfig) slackConfig() slack.Config {
	return slack.Config{Name: c.Name, BotToken: c.BotToken, AppToken: c.AppToken, APIURL: c.APIURL,
		Channels: append([]string(nil), c.Channels...), IconURLBase: c.IconURLBase,
		RatePerChannel: c.RatePerChannel, Burst: c.Burst, Transport: c.Transport, SigningSecret: c.SigningSecret,
		Listen: c.Listen, EventsPath: c.EventsPath}
}

// slackName is the network name of a Slack section: its name, default "slack".
func (c *SlackConnectorConfig) slackName() string {
	if c.Name == "" {
		return slack.DefaultName
	}
	return c.Name
}

// IRCConnectorConfig is one IRC network (bridges/irc.Config; see there for each field).
// Its channels appear in routes as "<name>:#channel", lowercase.
type IRCConnectorConfig struct {
	// Name is the network name, the namespace of its channel IDs. Required.
	Name       string `yaml:"name"`
	Server     string `yaml:"server"`
	TLS        bool   `yaml:"tls"`
	ServerName string `yaml:"server_name"`
	Nick       string `yaml:"nick"`
	User       string `yaml:"user"`
	RealName   string `yaml:"real_name"`
	// Password, SASL password and NickServ password are secrets: keep this file 0600.
	Password string `yaml:"password"`
	SASL     struct {
		User     string `yaml:"user"`
		Password string `yaml:"password"`
		External bool   `yaml:"external"`
	} `yaml:"sasl"`
	NickServPassword string `yaml:"nickserv_password"`
	Channels         []struct {
		Name string `yaml:"name"`
		Key  string `yaml:"key"`
	} `yaml:"channels"`
	FloodRate  float64 `yaml:"flood_rate"`
	FloodBurst int     `yaml:"flood_burst"`
	QueueSize  int     `yaml:"queue_size"`
	MaxLines   int     `yaml:"max_lines"`
	AntiPing   bool    `yaml:"anti_ping"`
	// Puppets gives the busiest Status users IRC connections of their own.
	Puppets struct {
		Enabled     bool          `yaml:"enabled"`
		Max         int           `yaml:"max"`
		IdleTimeout time.Duration `yaml:"idle_timeout"`
		NickSuffix  string        `yaml:"nick_suffix"`
	} `yaml:"puppets"`
}

// ircConfig maps the section onto bridges/irc's Config.
func (c *IRCConnectorConfig) ircConfig() irc.Config {
	cfg := irc.Config{Name: c.Name, Server: c.Server, TLS: c.TLS, ServerName: c.ServerName, Nick: c.Nick,
		User: c.User, RealName: c.RealName, Password: c.Password, NickServPassword: c.NickServPassword,
		SASL:      irc.SASLConfig{User: c.SASL.User, Password: c.SASL.Password, External: c.SASL.External},
		FloodRate: c.FloodRate, FloodBurst: c.FloodBurst, QueueSize: c.QueueSize, MaxLines: c.MaxLines, AntiPing: c.AntiPing,
		Puppets: irc.PuppetsConfig{Enabled: c.Puppets.Enabled, Max: c.Puppets.Max, IdleTimeout: c.Puppets.IdleTimeout,
			NickSuffix: c.Puppets.NickSuffix}}
	for _, ch := range c.Channels {
		cfg.Channels = append(cfg.Channels, irc.ChannelConfig{Name: ch.Name, Key: ch.Key})
	}
	return cfg
}

// validateNetworks checks every IRC network and Slack workspace (their packages'
// Validate, whose errors name "irc.<field>" or "slack.<field>", under the key
// connectors.irc[i] or connectors.slack[i]), and that network names are unique.
func (c *ConnectorsConfig) validateNetworks() error {
	errs := []error{c.validateIRC()}
	taken := map[string]string{}
	for i, n := range c.IRC {
		taken[n.Name] = fmt.Sprintf("connectors.irc[%d]", i)
	}
	for i, n := range c.Slack {
		key := fmt.Sprintf("connectors.slack[%d]", i)
		name := n.slackName()
		if name == apiNetwork || name == gateway.StatusNetwork || name == gateway.GatewayNetwork {
			errs = append(errs, fmt.Errorf("%s.name: %q is taken", key, name))
		} else if other, dup := taken[name]; dup {
			errs = append(errs, fmt.Errorf("%s.name: %q is also %s", key, name, other))
		}
		taken[name] = key
		if err := n.slackConfig().Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
	}
	for i := range c.Matrix {
		key := fmt.Sprintf("connectors.matrix[%d]", i)
		name := matrixName(&c.Matrix[i])
		if name == apiNetwork || name == gateway.StatusNetwork || name == gateway.GatewayNetwork {
			errs = append(errs, fmt.Errorf("%s.name: %q is taken", key, name))
		} else if other, dup := taken[name]; dup {
			errs = append(errs, fmt.Errorf("%s.name: %q is also %s", key, name, other))
		}
		taken[name] = key
		if err := c.Matrix[i].Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
	}
	return errors.Join(errs...)
}

// validateIRC checks every IRC network (bridges/irc.Config.Validate, whose errors name
// "irc.<field>"), under the key connectors.irc[i], and that names are unique.
func (c *ConnectorsConfig) validateIRC() error {
	var errs []error
	seen := map[string]int{}
	for i, n := range c.IRC {
		key := fmt.Sprintf("connectors.irc[%d]", i)
		if n.Name == "" {
			errs = append(errs, fmt.Errorf("%s.name: required (the network name of its channel IDs)", key))
		} else if n.Name == apiNetwork || n.Name == gateway.StatusNetwork || n.Name == gateway.GatewayNetwork {
			errs = append(errs, fmt.Errorf("%s.name: %q is taken", key, n.Name))
		} else if j, dup := seen[n.Name]; dup {
			errs = append(errs, fmt.Errorf("%s.name: %q is also connectors.irc[%d]", key, n.Name, j))
		}
		seen[n.Name] = i
		if err := n.ircConfig().Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
	}
	return errors.Join(errs...)
}

// APIConnectorConfig is the API connector: remote programs post to and read from route
// channels "api:<name>" over HTTP, authenticated by a bearer token.
type APIConnectorConfig struct {
	// Enabled runs the connector. Default (nil) false.
	Enabled *bool `yaml:"enabled"`
	// Listen is the connector's host:port. Default "127.0.0.1:8480".
	Listen string `yaml:"listen"`
	// TokenFile holds the bearer token (64 hex characters, mode 0600); `bridge init`
	// creates it. Default "<data_dir>/api.token".
	TokenFile string `yaml:"token_file"`
}

// apiNetwork is the API connector's network name, the network part of its channel IDs.
const apiNetwork = "api"

// enabled reports whether network has an enabled connector.
func (c *ConnectorsConfig) enabled(network string) bool {
	switch network {
	case apiNetwork:
		return c.API.Enabled != nil && *c.API.Enabled
	}
	for _, n := range c.IRC {
		if n.Name == network {
			return true
		}
	}
	for _, n := range c.Slack {
		if n.slackName() == network {
			return true
		}
	}
	for i := range c.Matrix {
		if matrixName(&c.Matrix[i]) == network {
			return true
		}
	}
	return false
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
// errors, so a typo never silently falls back to a default. The error lists every
// problem, one a line (errors.Join), each naming its key; `bridge check-config` prints
// them with file and line.
func loadConfig(path string) (*Config, error) {
	raw, err := readConfigBytes(path)
	if err != nil {
		return nil, err
	}
	c, _, problems, _ := parseConfig(raw)
	if len(problems) > 0 {
		errs := make([]error, len(problems))
		for i, p := range problems {
			errs[i] = errors.New(p.String())
		}
		return nil, fmt.Errorf("parse config %s: %w", displayPath(path), errors.Join(errs...))
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", displayPath(path), err)
	}
	return c, nil
}

// readConfigBytes reads path, or returns the embedded example when path is empty.
func readConfigBytes(path string) ([]byte, error) {
	if path == "" {
		return statusgate.ExampleConfig(), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return b, nil
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
	c.Gateway.withDefaults()
	c.Connectors.API.withDefaults(c.DataDir)
	c.Connectors.withDefaults(c.Gateway.Routes)
}

func (g *GatewayConfig) withDefaults() {
	if g.NickFormat == "" {
		g.NickFormat = gateway.DefaultNickFormat
	}
	if g.QueueLimit == 0 {
		g.QueueLimit = gateway.DefaultQueueLimit
	}
	if g.MaxAttempts == 0 {
		g.MaxAttempts = gateway.DefaultMaxAttempts
	}
	if g.RetryMin == 0 {
		g.RetryMin = gateway.DefaultRetryMin
	}
	if g.RetryMax == 0 {
		g.RetryMax = gateway.DefaultRetryMax
	}
	if g.AttemptTimeout == 0 {
		g.AttemptTimeout = gateway.DefaultAttemptTimeout
	}
}

func (a *APIConnectorConfig) withDefaults(dataDir string) {
	if a.Enabled == nil {
		off := false
		a.Enabled = &off
	}
	if a.Listen == "" {
		a.Listen = "127.0.0.1:8480"
	}
	if a.TokenFile == "" {
		a.TokenFile = filepath.Join(dataDir, "api.token")
	}
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

// Validate checks every field after withDefaults, without I/O. It reports every problem:
// the result is errors.Join of one error per problem, each starting with the dotted key
// it is about ("node.static_peers[1]: …").
func (c *Config) Validate() error {
	var errs []error
	if _, err := c.Log.level(); err != nil {
		errs = append(errs, err)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q is not text or json", c.Log.Format))
	}
	if strings.TrimSpace(c.DataDir) == "" {
		errs = append(errs, errors.New("data_dir: empty"))
	}
	errs = append(errs,
		c.Node.Validate(),
		c.Store.Validate(),
		c.Mailserver.Validate(),
		c.Identity.Validate(),
		c.Gateway.Validate(),
		c.HTTP.Validate(),
		c.Connectors.API.Validate(),
		c.Connectors.validateNetworks(),
	)
	// Every route channel needs a connector to carry it.
	for i, r := range c.Gateway.Routes {
		for j, ch := range r.Channels {
			id := bridges.ChannelID(ch.Channel)
			net := id.Network()
			if id.Validate() != nil || net == gateway.StatusNetwork || c.Connectors.enabled(net) {
				continue // malformed or Status: reported by Gateway.Validate
			}
			errs = append(errs, fmt.Errorf("gateway.routes[%d].channels[%d].channel: no enabled connector for network %q", i, j, net))
		}
	}
	return errors.Join(errs...)
}

// Validate checks the gateway section (routes via core/gateway's Config.Validate),
// reporting every problem as Config.Validate does. It cannot know which connectors are
// enabled: Config.Validate checks the route channels' networks.
func (g *GatewayConfig) Validate() error {
	var errs []error
	if strings.TrimSpace(g.SecretFile) == "" {
		errs = append(errs, errors.New("gateway.secret_file: blank"))
	}
	for network, account := range g.Accounts {
		key := "gateway.accounts." + network
		if err := bridges.ValidNetwork(network); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
		if err := (identity.PuppetID{Network: network, Account: account, User: "-"}).Validate(); err != nil && network != "" {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
	}
	if g.QueueLimit < 0 {
		errs = append(errs, fmt.Errorf("gateway.queue_limit: %d is negative", g.QueueLimit))
	}
	if g.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("gateway.max_attempts: %d is negative", g.MaxAttempts))
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"retry_min", g.RetryMin}, {"retry_max", g.RetryMax}, {"attempt_timeout", g.AttemptTimeout}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("gateway.%s: %v is negative", d.key, d.v))
		}
	}
	if g.RetryMin > 0 && g.RetryMax > 0 && g.RetryMax < g.RetryMin {
		errs = append(errs, fmt.Errorf("gateway.retry_max: %v is less than gateway.retry_min %v", g.RetryMax, g.RetryMin))
	}
	for i, r := range g.Routes {
		for j, ch := range r.Channels {
			if _, err := gateway.ParseDirection(ch.Direction); err != nil {
				errs = append(errs, fmt.Errorf("gateway.routes[%d].channels[%d].direction: %w", i, j, err))
			}
		}
	}
	if len(g.Routes) == 0 {
		// No routes is a gateway that bridges nothing, not an error here;
		// gateway.Config.Validate, which requires one, is for a gateway that runs.
		if strings.ContainsAny(g.NickFormat, "\r\n") {
			errs = append(errs, errors.New("gateway.nick_format: holds a line break"))
		}
	} else {
		cfg := g.gatewayConfig()
		for _, err := range flattenErrors(cfg.Validate()) {
			errs = append(errs, fmt.Errorf("gateway.%w", err))
		}
	}
	return errors.Join(errs...)
}

// gatewayConfig maps the section onto core/gateway's Config. Logger and Clock are left
// nil for the caller. Call it on a validated config: a bad direction maps to both.
func (g *GatewayConfig) gatewayConfig() gateway.Config {
	routes := make([]gateway.Route, len(g.Routes))
	for i, r := range g.Routes {
		chs := make([]gateway.RouteChannel, len(r.Channels))
		for j, ch := range r.Channels {
			dir, _ := gateway.ParseDirection(ch.Direction) // validated
			chs[j] = gateway.RouteChannel{Channel: bridges.ChannelID(ch.Channel), Direction: dir}
		}
		routes[i] = gateway.Route{Chat: strings.TrimPrefix(r.Chat, "#"), Channels: chs}
	}
	return gateway.Config{
		Routes:         routes,
		NickFormat:     g.NickFormat,
		NoNick:         g.NoNick,
		Accounts:       maps.Clone(g.Accounts),
		QueueLimit:     g.QueueLimit,
		MaxAttempts:    g.MaxAttempts,
		RetryMin:       g.RetryMin,
		RetryMax:       g.RetryMax,
		AttemptTimeout: g.AttemptTimeout,
	}
}

// Validate checks the http section.
func (h *HTTPConfig) Validate() error {
	if h.Listen == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(h.Listen); err != nil {
		return fmt.Errorf("http.listen: %w", err)
	}
	return nil
}

// Validate checks the api connector's section.
func (a *APIConnectorConfig) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(a.Listen); err != nil {
		errs = append(errs, fmt.Errorf("connectors.api.listen: %w", err))
	}
	if strings.TrimSpace(a.TokenFile) == "" {
		errs = append(errs, errors.New("connectors.api.token_file: blank"))
	}
	return errors.Join(errs...)
}

// flattenErrors lists the leaves of err's errors.Join tree (nil: none).
func flattenErrors(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flattenErrors(e)...)
		}
		return out
	}
	return []error{err}
}

// Validate checks the store section without touching the database.
func (s *StoreConfig) Validate() error {
	var errs []error
	switch s.Driver {
	case store.DriverSQLite:
		if strings.TrimSpace(s.Path) == "" {
			errs = append(errs, errors.New("store.path: empty for driver sqlite"))
		}
		if s.DSN != "" {
			errs = append(errs, errors.New("store.dsn: set for driver sqlite (it is for postgres; use store.path)"))
		}
	case store.DriverPostgres:
		if strings.TrimSpace(s.DSN) == "" {
			errs = append(errs, errors.New("store.dsn: required for driver postgres"))
		}
		if s.Path != "" {
			errs = append(errs, errors.New("store.path: set for driver postgres (it is for sqlite; use store.dsn)"))
		}
	default:
		errs = append(errs, fmt.Errorf("store.driver: %q is not %s or %s", s.Driver, store.DriverSQLite, store.DriverPostgres))
	}
	return errors.Join(errs...)
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
	if m.DefaultLimit > m.MaxLimit {
		errs = append(errs, fmt.Errorf("mailserver.default_limit: %d exceeds mailserver.max_limit %d", m.DefaultLimit, m.MaxLimit))
	}
	if r := m.RequestsPerSecond; math.IsNaN(r) || math.IsInf(r, 0) || r <= 0 {
		errs = append(errs, fmt.Errorf("mailserver.requests_per_second: %v is not a finite positive number", r))
	}
	if m.RequestBurst < 1 {
		errs = append(errs, fmt.Errorf("mailserver.request_burst: %d is less than 1", m.RequestBurst))
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
