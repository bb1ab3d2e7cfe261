package irc

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/statusgate/statusgate/bridges"
)

// Defaults for the zero values of Config.
const (
	DefaultName       = "irc"
	DefaultFloodRate  = 2.0
	DefaultFloodBurst = 5
	DefaultQueueSize  = 64
	DefaultMaxLines   = 5

	DefaultGhostsMax         = 10
	DefaultGhostsIdleTimeout = 30 * time.Minute
	DefaultGhostsNickSuffix  = "[s]"

	maxNickLen    = 30 // ngircd's MaxNickLength in tests; most networks allow 16-32
	maxChannelLen = 50 // RFC 2812
	maxSuffixLen  = 10 // Ghosts.NickSuffix
)

// Config configures one IRC network (one relay connection). It is a value: New copies
// it and the connector never changes it. Every field documents its zero-value default;
// the yaml tags are the keys of cmd/bridge's connectors.irc[i].
type Config struct {
	// Name is the network name (bridges.ValidNetwork), the namespace of every ID the
	// connector builds, such as "libera". Default "irc".
	Name string `yaml:"name"`
	// Server is host:port of the IRC server. Required.
	Server string `yaml:"server"`
	// TLS connects with TLS, verified against the system roots. Default false.
	TLS bool `yaml:"tls"`
	// ServerName is the name the TLS certificate must hold. Default: Server's host.
	ServerName string `yaml:"server_name"`
	// Nick is the relay bot's nick. Required; 1..30 bytes of IRC nick characters.
	Nick string `yaml:"nick"`
	// User is the ident/user name. Default Nick.
	User string `yaml:"user"`
	// RealName is the real name (gecos). Default "statusgate".
	RealName string `yaml:"real_name"`
	// Password is the server password (PASS). Default none. A secret: never logged.
	Password string `yaml:"password"`
	// SASL authenticates during registration. Default none.
	SASL SASLConfig `yaml:"sasl"`
	// NickServPassword is sent as "IDENTIFY" to NickServ after registration, for
	// networks without SASL. Default none. A secret.
	NickServPassword string `yaml:"nickserv_password"`
	// Channels are the channels to join and relay. Required, unique.
	Channels []ChannelConfig `yaml:"channels"`
	// FloodRate is the number of lines per second the connector writes (a token
	// bucket per connection; girc's own limiter is off). Default 2.
	FloodRate float64 `yaml:"flood_rate"`
	// FloodBurst is the bucket size: lines written at once after a quiet period.
	// Default 5.
	FloodBurst int `yaml:"flood_burst"`
	// QueueSize is the number of Sends that may wait for the bucket at once; further
	// Sends block until a slot frees (back-pressure to the gateway, never a drop).
	// Default 64.
	QueueSize int `yaml:"queue_size"`
	// MaxLines is the most IRC lines one message becomes; the rest is replaced by a
	// "… (N more lines)" line, so nothing is cut silently. Default 5 (minimum 2).
	MaxLines int `yaml:"max_lines"`
	// AntiPing inserts a zero-width space into relayed nicks, so that IRC users of the
	// same nick are not highlighted. Default false.
	AntiPing bool `yaml:"anti_ping"`
	// Ghosts gives the busiest Status senders IRC connections of their own (ghost.go).
	// Default off: every Status sender is relayed as "<nick>" lines.
	Ghosts GhostsConfig `yaml:"ghosts"`
	// Puppets is Ghosts' former name, still read: a configuration with puppets and no
	// ghosts runs with them as Ghosts, and Deprecated says to rename the key. Both set
	// is an error.
	Puppets *GhostsConfig `yaml:"puppets"`
}

// Deprecated lists the keys of c read under a former name, each with what to write
// instead; cmd/bridge logs them at start and check-config prints them.
func (c Config) Deprecated() []string {
	if c.Puppets != nil {
		return []string{"irc.puppets: renamed ghosts (a Status user's presence on IRC); rename the key, it is read for now"}
	}
	return nil
}

// GhostsConfig configures per-user ghost connections: with Enabled, a Status sender's
// messages come from an IRC connection of their own, with a nick made from their name
// (sanitised, NickSuffix appended, digits added on a collision), without the "<nick>"
// prefix. Senders beyond Max, and messages sent while a sender's ghost is still
// connecting, go through the relay connection as before: nothing waits long and nothing
// is dropped.
type GhostsConfig struct {
	// Enabled turns ghosts on. Default false.
	Enabled bool `yaml:"enabled"`
	// Max caps the ghost connections open at once (the server counts them per IP:
	// mind its limit). Default 10.
	Max int `yaml:"max"`
	// IdleTimeout is how long a ghost stays connected after its last message; then
	// it QUITs, and reconnects on the sender's next message. Default 30m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// NickSuffix is appended to every ghost nick, so IRC users can tell Status users
	// apart and a ghost does not take a regular's nick. Default "[s]". Nick
	// characters only, at most 10 bytes.
	NickSuffix string `yaml:"nick_suffix"`
}

// SASLConfig selects a SASL mechanism. Set User and Password for PLAIN, or External
// for EXTERNAL (a client certificate; not configurable here yet). Default: no SASL.
type SASLConfig struct {
	User     string `yaml:"user"`
	Password string `yaml:"password"` // a secret
	External bool   `yaml:"external"`
}

// ChannelConfig is one channel to join.
type ChannelConfig struct {
	// Name is the channel, such as "#status". Required.
	Name string `yaml:"name"`
	// Key is the channel key (+k). Default none. A secret.
	Key string `yaml:"key"`
}

// LogValue redacts the secrets.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", c.Name), slog.String("server", c.Server),
		slog.Bool("tls", c.TLS), slog.String("nick", c.Nick), slog.Int("channels", len(c.Channels)))
}

// String redacts the secrets.
func (c Config) String() string { return c.LogValue().String() }

// Network is the network name after defaults: Name, or DefaultName.
func (c Config) Network() string { return c.withDefaults().Name }

func (c Config) withDefaults() Config {
	if c.Puppets != nil && c.Ghosts == (GhostsConfig{}) {
		c.Ghosts = *c.Puppets
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.User == "" {
		c.User = c.Nick
	}
	if c.RealName == "" {
		c.RealName = "statusgate"
	}
	if c.FloodRate == 0 {
		c.FloodRate = DefaultFloodRate
	}
	if c.FloodBurst == 0 {
		c.FloodBurst = DefaultFloodBurst
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.MaxLines == 0 {
		c.MaxLines = DefaultMaxLines
	}
	if c.Ghosts.Max == 0 {
		c.Ghosts.Max = DefaultGhostsMax
	}
	if c.Ghosts.IdleTimeout == 0 {
		c.Ghosts.IdleTimeout = DefaultGhostsIdleTimeout
	}
	if c.Ghosts.NickSuffix == "" {
		c.Ghosts.NickSuffix = DefaultGhostsNickSuffix
	}
	c.Channels = append([]ChannelConfig(nil), c.Channels...)
	return c
}

// Validate returns nil if c (after defaults) can work, else an error wrapping
// ErrInvalidConfig that names the key.
func (c Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%w: irc.%s: %s", ErrInvalidConfig, key, fmt.Sprintf(format, args...))
	}
	if c.Puppets != nil && c.Ghosts != (GhostsConfig{}) {
		return bad("puppets", "the former name of ghosts: set ghosts only")
	}
	c = c.withDefaults()
	if err := bridges.ValidNetwork(c.Name); err != nil {
		return bad("name", "%v", err)
	}
	host, port, err := net.SplitHostPort(c.Server)
	if err != nil || host == "" {
		return bad("server", "want host:port, got %q", c.Server)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return bad("server", "bad port %q", port)
	}
	if err := validNick(c.Nick); err != nil {
		return bad("nick", "%v", err)
	}
	if err := validParam(c.User, false); err != nil || strings.ContainsAny(c.User, "@") {
		return bad("user", "%q: not a valid user name", c.User)
	}
	for key, v := range map[string]string{"real_name": c.RealName, "password": c.Password,
		"nickserv_password": c.NickServPassword, "sasl.user": c.SASL.User, "sasl.password": c.SASL.Password, "server_name": c.ServerName} {
		if err := validParam(v, true); err != nil {
			return bad(key, "%v", err)
		}
	}
	if c.SASL.External && (c.SASL.User != "" || c.SASL.Password != "") {
		return bad("sasl", "external and user/password are exclusive")
	}
	if (c.SASL.User == "") != (c.SASL.Password == "") {
		return bad("sasl", "user and password go together")
	}
	if len(c.Channels) == 0 {
		return bad("channels", "empty")
	}
	seen := map[string]bool{}
	for i, ch := range c.Channels {
		key := fmt.Sprintf("channels[%d]", i)
		if err := validChannel(ch.Name); err != nil {
			return bad(key+".name", "%v", err)
		}
		if seen[foldName(ch.Name)] {
			return bad(key+".name", "%q twice", ch.Name)
		}
		seen[foldName(ch.Name)] = true
		if err := validParam(ch.Key, false); err != nil {
			return bad(key+".key", "%v", err)
		}
	}
	switch {
	case c.FloodRate < 0:
		return bad("flood_rate", "negative")
	case c.FloodBurst < 1:
		return bad("flood_burst", "below 1")
	case c.QueueSize < 1:
		return bad("queue_size", "below 1")
	case c.MaxLines < 2:
		return bad("max_lines", "below 2")
	case c.Ghosts.Max < 1:
		return bad("ghosts.max", "below 1")
	case c.Ghosts.IdleTimeout < 0:
		return bad("ghosts.idle_timeout", "negative")
	case len(c.Ghosts.NickSuffix) > maxSuffixLen || validNick("a"+c.Ghosts.NickSuffix) != nil:
		return bad("ghosts.nick_suffix", "%q: want at most %d nick characters", c.Ghosts.NickSuffix, maxSuffixLen)
	}
	return nil
}

// validNick accepts RFC 2812 nicks (letters, digits, specials, '-'), 1..30 bytes.
func validNick(s string) error {
	if s == "" || len(s) > maxNickLen {
		return fmt.Errorf("%q: length not 1..%d", s, maxNickLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || strings.IndexByte("[]\\`_^{|}", c) >= 0 ||
			i > 0 && ('0' <= c && c <= '9' || c == '-')
		if !ok {
			return fmt.Errorf("%q: not a valid nick", s)
		}
	}
	return nil
}

// validChannel accepts "#name" or "&name": 2..50 bytes, no space, comma, BELL or
// control character.
func validChannel(s string) error {
	if len(s) < 2 || len(s) > maxChannelLen || (s[0] != '#' && s[0] != '&') {
		return fmt.Errorf("%q: want #name of at most %d bytes", s, maxChannelLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == ',' || s[i] == 0x7f || s[i] == ':' && i == 0 {
			return fmt.Errorf("%q: space, comma or control character", s)
		}
	}
	return nil
}

// validParam rejects what could end or split an IRC line: CR, LF, NUL and other
// control bytes, and (unless spaces) spaces.
func validParam(s string, spaces bool) error {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (!spaces && r == ' ') {
			return fmt.Errorf("holds a control character or space")
		}
	}
	if strings.HasPrefix(s, ":") {
		return fmt.Errorf("starts with ':'")
	}
	return nil
}
