package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/statusgate/statusgate"
	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/bridges/api"
	"github.com/statusgate/statusgate/bridges/irc"
	"github.com/statusgate/statusgate/bridges/matrix"
	"github.com/statusgate/statusgate/bridges/slack"
	"github.com/statusgate/statusgate/core/gateway"
	"github.com/statusgate/statusgate/store"
)

// Config is the root configuration: one section per package that needs settings. Each
// field documents its zero-value default; withDefaults fills them, Validate checks them.
// The sections of the node and the process are in sections.go, the Go runtime's in
// memlimit.go, the gateway's in gatewaysection.go; a connector's section is its
// package's Config.
type Config struct {
	// DataDir holds the gateway's state. Default "./data".
	DataDir string    `yaml:"data_dir"`
	Log     LogConfig `yaml:"log"`
	// Runtime holds the Go runtime's settings (memlimit.go). Default: none set.
	Runtime  RuntimeConfig  `yaml:"runtime"`
	Node     NodeConfig     `yaml:"node"`
	Identity IdentityConfig `yaml:"identity"`
	// Store is the database (package store). Default SQLite at "<data_dir>/statusgate.db".
	Store store.Config `yaml:"store"`
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

// ConnectorsConfig holds one section per connector, each its package's Config (its
// yaml keys, defaults and Validate). The list of them, with their constructors, is
// connectorSections in run.go.
type ConnectorsConfig struct {
	// API is the HTTP API connector (bridges/api).
	API APIConnectorConfig `yaml:"api"`
	// IRC lists IRC networks, one relay connection each (bridges/irc). Channels appear
	// in routes as "<name>:#channel", lowercase. Default none.
	IRC []irc.Config `yaml:"irc"`
	// Slack lists Slack workspaces, one app each (bridges/slack). Channels appear in
	// routes as "<name>:<channel ID>". Default none.
	Slack []slack.Config `yaml:"slack"`
	// Matrix lists Matrix homeservers, one application service each (bridges/matrix).
	// rooms defaults to one portal room per route channel of the network. Default none.
	Matrix []matrix.Config `yaml:"matrix"`
}

// APIConnectorConfig is the api connector's section: bridges/api's Config (its keys),
// plus what the composition root does for it: whether it runs, and the file its bearer
// token comes from. Its channels default to the route channels of its network.
type APIConnectorConfig struct {
	// Enabled runs the connector. Default (nil) false.
	Enabled *bool `yaml:"enabled"`
	// TokenFile holds the bearer token (64 hex characters, mode 0600); `bridge init`
	// creates it. Default "<data_dir>/api.token".
	TokenFile  string `yaml:"token_file"`
	api.Config `yaml:",inline"`
}

// withDefaults gives the sections whose channels are the routes' (the api connector's
// channels, a Matrix homeserver's rooms) one channel per route channel of their network.
func (c *ConnectorsConfig) withDefaults(dataDir string, routes []RouteConfig) {
	if c.API.Enabled == nil {
		off := false
		c.API.Enabled = &off
	}
	if c.API.Listen == "" {
		c.API.Listen = api.DefaultListen
	}
	if c.API.TokenFile == "" {
		c.API.TokenFile = filepath.Join(dataDir, "api.token")
	}
	if len(c.API.Channels) == 0 {
		c.API.Channels = routeLocals(routes, c.API.Network())
	}
	for i := range c.Matrix {
		if m := &c.Matrix[i]; len(m.Rooms) == 0 {
			for _, local := range routeLocals(routes, m.Network()) {
				m.Rooms = append(m.Rooms, matrix.RoomConfig{Chat: local})
			}
		}
	}
}

// routeLocals lists the local parts of the route channels of network.
func routeLocals(routes []RouteConfig, network string) []string {
	var out []string
	for _, r := range routes {
		for _, ch := range r.Channels {
			if id := bridges.ChannelID(ch.Channel); id.Network() == network && id.Local() != "" {
				out = append(out, id.Local())
			}
		}
	}
	return out
}

// validateConnectors checks every connector section (its package's Validate, re-keyed
// under the section's key: "connectors.irc[1].nick: …") and that network names are
// unique and not reserved. It returns the enabled networks.
func (c *Config) validateConnectors() (map[string]bool, error) {
	var errs []error
	taken := map[string]string{}
	for _, s := range c.connectorSections() {
		name := s.network
		if name == gateway.StatusNetwork || name == gateway.GatewayNetwork {
			errs = append(errs, fmt.Errorf("%s.name: %q is reserved", s.key, name))
		} else if other, dup := taken[name]; dup {
			errs = append(errs, fmt.Errorf("%s.name: %q is also %s", s.key, name, other))
		}
		taken[name] = s.key
		if err := s.validate(); err != nil {
			errs = append(errs, sectionError(s.key, err))
		}
	}
	enabled := make(map[string]bool, len(taken))
	for name := range taken {
		enabled[name] = true
	}
	return enabled, errors.Join(errs...)
}

// deprecations lists the keys of the configuration read under a former name, each as
// "connectors.irc[0].puppets: what to do".
func (c *Config) deprecations() []string {
	var out []string
	for _, s := range c.connectorSections() {
		if s.deprecated == nil {
			continue
		}
		for _, d := range s.deprecated() {
			if _, rest, ok := strings.Cut(d, "."); ok { // "irc.puppets: …" → "puppets: …"
				d = rest
			}
			out = append(out, s.key+"."+d)
		}
	}
	return out
}

// connectorKeyRE matches a connector's config error, "invalid irc config: irc.nick: …".
var connectorKeyRE = regexp.MustCompile(`^invalid \w+ config: \w+\.([a-z_]+(?:\[\d+\])?(?:\.[a-z_]+(?:\[\d+\])?)*): (.*)$`)

// sectionError puts a connector's config error under the section's key.
func sectionError(key string, err error) error {
	if m := connectorKeyRE.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Errorf("%s.%s: %s", key, m[1], m[2])
	}
	return fmt.Errorf("%s: %w", key, err)
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
	c.Log.withDefaults()
	c.Node.withDefaults(c.DataDir)
	if c.Store.Driver == "" {
		c.Store.Driver = store.DriverSQLite
	}
	if c.Store.Driver == store.DriverSQLite && c.Store.Path == "" {
		c.Store.Path = filepath.Join(c.DataDir, "statusgate.db")
	}
	c.Mailserver.withDefaults()
	if c.HTTP.TokenFile == "" {
		c.HTTP.TokenFile = filepath.Join(c.DataDir, "admin.token")
	}
	c.Gateway.withDefaults(c.DataDir)
	c.Connectors.withDefaults(c.DataDir, c.Gateway.Routes)
}

// Validate checks every field after withDefaults, without I/O. It reports every problem:
// the result is errors.Join of one error per problem, each starting with the dotted key
// it is about ("node.static_peers[1]: …"). What it cannot see (key files, the objects
// bridge run builds from the sections) checkStart checks; check-config runs both.
func (c *Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.DataDir) == "" {
		errs = append(errs, errors.New("data_dir: empty"))
	}
	enabled, connErr := c.validateConnectors()
	errs = append(errs,
		c.Log.Validate(),
		c.Runtime.Validate(),
		c.Node.Validate(),
		c.Store.Validate(),
		c.Mailserver.Validate(),
		c.Identity.Validate(),
		c.Gateway.Validate(),
		c.HTTP.Validate(),
		c.Connectors.API.validate(),
		connErr,
	)
	// Every route channel needs a connector to carry it.
	for i, r := range c.Gateway.Routes {
		for j, ch := range r.Channels {
			id := bridges.ChannelID(ch.Channel)
			net := id.Network()
			if id.Validate() != nil || net == gateway.StatusNetwork || enabled[net] {
				continue // malformed or Status: reported by Gateway.Validate
			}
			errs = append(errs, fmt.Errorf("gateway.routes[%d].channels[%d].channel: no enabled connector for network %q", i, j, net))
		}
	}
	var flat []error // without store's ErrConfig suffix, as check-config prints them
	for _, err := range flattenErrors(errors.Join(errs...)) {
		flat = append(flat, errors.New(strings.TrimSuffix(err.Error(), ": "+store.ErrConfig.Error())))
	}
	return errors.Join(flat...)
}

// sections is the api connector when enabled. Its bridges/api Config is checked with a
// stand-in token (Token is read from TokenFile at start), and without its channels
// unless the gateway runs (routes): without routes bridge run builds no connector.
func (a *APIConnectorConfig) sections(routed bool) []connectorSection {
	if a.Enabled == nil || !*a.Enabled {
		return nil
	}
	return []connectorSection{{key: "connectors.api", network: a.Network(),
		validate: func() error {
			cfg := a.Config
			if cfg.Token == "" {
				cfg.Token = "token-from-token-file"
			}
			if !routed && len(cfg.Channels) == 0 {
				cfg.Channels = []string{"unrouted"} // no routes: its channels do not matter
			}
			return cfg.Validate()
		},
		build: func() (bridges.Connector, error) { return api.New(a.Config) }}}
}

// validate checks what the section adds to bridges/api's Config, and its listen address
// while it is disabled (enabled, bridges/api checks it).
func (a *APIConnectorConfig) validate() error {
	var errs []error
	if strings.TrimSpace(a.TokenFile) == "" {
		errs = append(errs, errors.New("connectors.api.token_file: blank"))
	}
	if _, _, err := net.SplitHostPort(a.Listen); err != nil && (a.Enabled == nil || !*a.Enabled) {
		errs = append(errs, fmt.Errorf("connectors.api.listen: %w", err))
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
