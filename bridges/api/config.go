package api

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/statusgate/statusgate/bridges"
)

// Defaults for the zero values of Config.
const (
	DefaultName             = "api"
	DefaultListen           = "127.0.0.1:8480"
	DefaultMaxBodyBytes     = 128 << 10
	DefaultReplay           = 10000
	DefaultReplayBytes      = 16 << 20
	DefaultSubscriberBuffer = 2048
	DefaultHeartbeat        = 15 * time.Second

	// maxChannelLen bounds a channel name so that "channel/" plus a 200-byte client
	// id still fits bridges.MaxLocalIDLen.
	maxChannelLen = 256
)

// Config configures one api connector. It is a value: New copies it, and the
// connector never changes it. Every field documents its zero-value default; the yaml
// tags are the keys of cmd/bridge's connectors.api (which reads Token from a file).
//
// The connector's logger is not configured here: the Host gives it (Host.Logger).
type Config struct {
	// Name is the network name (bridges.ValidNetwork) and so the namespace of every ID
	// this connector builds. Default "api". Two api connectors need two names.
	Name string `yaml:"name"`
	// Listen is the TCP address of the HTTP server, host:port. Default
	// "127.0.0.1:8480"; tests use "127.0.0.1:0".
	Listen string `yaml:"listen"`
	// Token is the bearer token every request must carry. Required. It is a secret:
	// it is never logged (Config redacts it in String and LogValue) and it is compared
	// in constant time.
	Token string `yaml:"-"`
	// Channels are the local channel names this connector serves, such as "status";
	// the gateway's routes refer to them as bridges.NewChannelID(Name, channel).
	// Required; each must be a valid local ID part without '/', at most 256 bytes,
	// and unique.
	Channels []string `yaml:"channels"`
	// MaxBodyBytes is the largest POST body accepted (413 above). Default 128 KiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// Replay is the number of events kept per channel for SSE resume (Last-Event-ID)
	// and for Send's idempotency check. Default 10000 (five seconds at 2,000 msg/s).
	Replay int `yaml:"replay"`
	// ReplayBytes bounds the bytes of the events kept per channel for resume, beside
	// Replay (whichever is reached first evicts the oldest), and the bytes queued for
	// one SSE stream before it counts as too slow. Default 16 MiB: without it 10,000
	// events of 64 KiB of text would pin over 600 MiB per channel.
	ReplayBytes int64 `yaml:"replay_bytes"`
	// SubscriberBuffer is the number of events queued for one SSE stream before it
	// counts as too slow and is disconnected. Default 2048: Status traffic arrives in
	// bursts, one per 300 ms Whisper transmission cycle (600 events at 2,000 msg/s).
	SubscriberBuffer int `yaml:"subscriber_buffer"`
	// Heartbeat is the interval of the ": ping" comment on idle SSE streams. Default 15s.
	Heartbeat time.Duration `yaml:"heartbeat"`
	// RateLimit bounds the POSTs of the whole connector and of each user name (429
	// past it). Zero fields are their defaults (RateLimit's doc).
	RateLimit RateLimit `yaml:"rate_limit"`
}

// Network is the network name after defaults: Name, or DefaultName.
func (c Config) Network() string { return c.withDefaults().Name }

// withDefaults returns c with zero fields replaced by their defaults.
func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Replay == 0 {
		c.Replay = DefaultReplay
	}
	if c.ReplayBytes == 0 {
		c.ReplayBytes = DefaultReplayBytes
	}
	if c.SubscriberBuffer == 0 {
		c.SubscriberBuffer = DefaultSubscriberBuffer
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	c.RateLimit = c.RateLimit.withDefaults()
	c.Channels = append([]string(nil), c.Channels...)
	return c
}

// Validate returns nil if c is usable (zero values stand for their defaults), else an
// error wrapping ErrInvalidConfig that names the first bad key, such as
// "api.token: empty". The token itself never appears in the error.
func (c Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%w: api.%s: %s", ErrInvalidConfig, key, fmt.Sprintf(format, args...))
	}
	name := c.Name
	if name == "" {
		name = DefaultName
	}
	if err := bridges.ValidNetwork(name); err != nil {
		return bad("name", "%v", err)
	}
	if c.Listen != "" {
		_, port, err := net.SplitHostPort(c.Listen)
		if err != nil {
			return bad("listen", "%v", err)
		}
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || strconv.FormatUint(n, 10) != port {
			return bad("listen", "port %q is not a number 0..65535", port)
		}
	}
	switch {
	case c.Token == "":
		return bad("token", "empty")
	case strings.IndexFunc(c.Token, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r > unicode.MaxASCII }) >= 0:
		return bad("token", "holds whitespace, control or non-ASCII characters")
	}
	if len(c.Channels) == 0 {
		return bad("channels", "empty")
	}
	seen := make(map[string]bool, len(c.Channels))
	for i, ch := range c.Channels {
		key := fmt.Sprintf("channels[%d]", i)
		if _, err := bridges.NewChannelID(name, ch); err != nil {
			return bad(key, "%v", err)
		}
		if strings.Contains(ch, "/") {
			return bad(key, "%q holds '/'", ch)
		}
		if len(ch) > maxChannelLen {
			return bad(key, "longer than %d bytes", maxChannelLen)
		}
		if seen[ch] {
			return bad(key, "%q listed twice", ch)
		}
		seen[ch] = true
	}
	if c.MaxBodyBytes < 0 {
		return bad("max_body_bytes", "negative")
	}
	if c.Replay < 0 {
		return bad("replay", "negative")
	}
	if c.ReplayBytes < 0 {
		return bad("replay_bytes", "negative")
	}
	if c.SubscriberBuffer < 0 {
		return bad("subscriber_buffer", "negative")
	}
	if c.Heartbeat < 0 {
		return bad("heartbeat", "negative")
	}
	if err := c.RateLimit.validate(); err != nil {
		return fmt.Errorf("%w: api.%v", ErrInvalidConfig, err)
	}
	return nil
}

// String describes c with the token redacted, so that %v and %+v of a Config never
// print the secret.
func (c Config) String() string {
	return fmt.Sprintf("api.Config{Name:%q Listen:%q Token:%s Channels:%q MaxBodyBytes:%d Replay:%d ReplayBytes:%d SubscriberBuffer:%d Heartbeat:%s}",
		c.Name, c.Listen, redacted(c.Token), c.Channels, c.MaxBodyBytes, c.Replay, c.ReplayBytes, c.SubscriberBuffer, c.Heartbeat)
}

// GoString is String, so that %#v redacts the token too.
func (c Config) GoString() string { return c.String() }

// LogValue logs c with the token redacted (slog.LogValuer).
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("name", c.Name), slog.String("listen", c.Listen),
		slog.String("token", redacted(c.Token)), slog.Any("channels", c.Channels),
		slog.Int64("max_body_bytes", c.MaxBodyBytes), slog.Int("replay", c.Replay), slog.Int64("replay_bytes", c.ReplayBytes),
		slog.Int("subscriber_buffer", c.SubscriberBuffer), slog.Duration("heartbeat", c.Heartbeat),
	)
}

func redacted(secret string) string {
	if secret == "" {
		return `""`
	}
	return "[redacted]"
}
