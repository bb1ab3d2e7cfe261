package matrix

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/statusgate/statusgate/bridges"
)

// Defaults for the zero values of Config.
const (
	DefaultName           = "matrix"
	DefaultListen         = "127.0.0.1:29333"
	DefaultBotLocalpart   = "statusbot"
	DefaultGhostPrefix    = "status_"
	DefaultRegistrationID = "statusgate"
	// DefaultNewGhostsPerMinute bounds ghost registrations (Config.NewGhostsPerMinute).
	DefaultNewGhostsPerMinute = 30

	maxChatLen = 64
)

// Config configures the connector: one application service on one homeserver. It is
// a value: New copies it and the connector never changes it. Every field documents its
// zero-value default; the yaml tags are the keys cmd/bridge uses.
type Config struct {
	// Name is the network name (bridges.ValidNetwork), the namespace of every ID the
	// connector builds. Default "matrix".
	Name string `yaml:"name"`
	// HomeserverURL is the client-server API base URL, such as "http://127.0.0.1:8008".
	// Required.
	HomeserverURL string `yaml:"homeserver_url"`
	// ServerName is the homeserver's server name (the domain of user IDs), such as
	// "example.org". Required.
	ServerName string `yaml:"server_name"`
	// ASToken is the as_token of the registration: the connector authenticates to the
	// homeserver with it. Required. A secret: never logged.
	ASToken string `yaml:"as_token"`
	// HSToken is the hs_token of the registration: the homeserver authenticates to the
	// connector with it. Required, different from ASToken. A secret.
	HSToken string `yaml:"hs_token"`
	// Listen is host:port of the appservice HTTP listener the homeserver pushes
	// transactions to. Default "127.0.0.1:29333".
	Listen string `yaml:"listen"`
	// URL is where the homeserver reaches the listener, written into the registration.
	// Default "http://" + Listen.
	URL string `yaml:"url"`
	// RegistrationID is the registration's id. Default "statusgate".
	RegistrationID string `yaml:"registration_id"`
	// BotLocalpart is the local part of the bridge bot (the registration's
	// sender_localpart), which creates the portal rooms. Default "statusbot".
	BotLocalpart string `yaml:"bot_localpart"`
	// GhostPrefix starts the local part of every ghost user and portal alias: ghosts
	// are @<prefix><hash>:server, aliases #<prefix><chat>:server; the registration
	// claims both namespaces exclusively. Default "status_".
	GhostPrefix string `yaml:"ghost_prefix"`
	// Rooms are the portal rooms, one per routed channel. Required, unique chats.
	Rooms []RoomConfig `yaml:"rooms"`
	// AvatarURLBase, when set, is where ghost avatars come from: the connector GETs
	// AvatarURLBase + the URL-escaped sender ID ("status:0x04…") once per ghost,
	// uploads the image to the homeserver and sets it as the ghost's avatar, unless the
	// ghost has one already. Point it at the gateway's identicon endpoint,
	// "http://<http.listen>/identicons/". Default "": ghosts have no avatar.
	AvatarURLBase string `yaml:"avatar_url_base"`
	// NewGhostsPerMinute bounds how many ghosts the connector registers a minute (burst
	// the same): every Status key a sender mints would otherwise be a new account on
	// the homeserver. A message whose ghost would pass the bound is posted by the bot
	// with a "<name> " prefix instead, visibly, and the ghost is made on a later
	// message. Ghosts already registered cost nothing. Default 30.
	NewGhostsPerMinute int `yaml:"new_ghosts_per_minute"`
}

// RoomConfig is one portal room.
type RoomConfig struct {
	// Chat is the channel's local part: the connector's ChannelID is "<name>:<chat>".
	// Required; 1..64 bytes of [a-z0-9._=-] (it becomes part of the alias).
	Chat string `yaml:"chat"`
	// Room is an existing room ID ("!abc:server") or alias ("#x:server") to use; the
	// bot must be able to join it (public, or invited). Default: the alias
	// #<ghost_prefix><chat>:<server_name>, created on first start if missing.
	Room string `yaml:"room"`
}

// LogValue redacts the secrets.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", c.Name), slog.String("homeserver_url", c.HomeserverURL),
		slog.String("server_name", c.ServerName), slog.String("listen", c.Listen),
		slog.String("as_token", redact(c.ASToken)), slog.String("hs_token", redact(c.HSToken)),
		slog.String("bot_localpart", c.BotLocalpart), slog.Int("rooms", len(c.Rooms)),
		slog.String("avatar_url_base", c.AvatarURLBase), slog.Int("new_ghosts_per_minute", c.NewGhostsPerMinute))
}

// String redacts the secrets.
func (c Config) String() string { return c.LogValue().String() }

func redact(s string) string {
	if s == "" {
		return ""
	}
	return "REDACTED"
}

// Network is the network name after defaults: Name, or DefaultName.
func (c Config) Network() string { return c.withDefaults().Name }

func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.URL == "" {
		c.URL = "http://" + c.Listen
	}
	if c.RegistrationID == "" {
		c.RegistrationID = DefaultRegistrationID
	}
	if c.BotLocalpart == "" {
		c.BotLocalpart = DefaultBotLocalpart
	}
	if c.GhostPrefix == "" {
		c.GhostPrefix = DefaultGhostPrefix
	}
	if c.NewGhostsPerMinute == 0 {
		c.NewGhostsPerMinute = DefaultNewGhostsPerMinute
	}
	c.Rooms = append([]RoomConfig(nil), c.Rooms...)
	return c
}

// Validate returns nil if c (after defaults) can work, else an error wrapping
// ErrInvalidConfig that names the key ("matrix.hs_token: empty").
func (c Config) Validate() error {
	c = c.withDefaults()
	if err := c.validateRegistration(); err != nil {
		return err
	}
	bad := badKey
	if u, err := url.Parse(c.HomeserverURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("homeserver_url", "want http(s)://host[:port], got %q", c.HomeserverURL)
	}
	if err := bridges.ValidNetwork(c.Name); err != nil {
		return bad("name", "%v", err)
	}
	switch {
	case c.ASToken == "":
		return bad("as_token", "empty")
	case c.HSToken == "":
		return bad("hs_token", "empty")
	case c.ASToken == c.HSToken:
		return bad("hs_token", "same as as_token")
	}
	if len(c.Rooms) == 0 {
		return bad("rooms", "empty")
	}
	if c.NewGhostsPerMinute < 0 {
		return bad("new_ghosts_per_minute", "negative")
	}
	if c.AvatarURLBase != "" {
		if u, err := url.Parse(c.AvatarURLBase); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("avatar_url_base", "want an http(s) URL, got %q", c.AvatarURLBase)
		}
	}
	seen := map[string]bool{}
	for i, r := range c.Rooms {
		key := "rooms[" + strconv.Itoa(i) + "]"
		if err := validChat(r.Chat); err != nil {
			return bad(key+".chat", "%v", err)
		}
		if seen[r.Chat] {
			return bad(key+".chat", "%q twice", r.Chat)
		}
		seen[r.Chat] = true
		if r.Room != "" && (!(r.Room[0] == '!' || r.Room[0] == '#') || !strings.Contains(r.Room, ":") || strings.ContainsAny(r.Room, " \t\n/")) {
			return bad(key+".room", "want !id:server or #alias:server, got %q", r.Room)
		}
	}
	return nil
}

// validateRegistration checks the keys the registration needs (GenerateRegistration
// works without tokens and rooms).
func (c Config) validateRegistration() error {
	bad := badKey
	if c.ServerName == "" || strings.ContainsAny(c.ServerName, "/ @#!\t\n") {
		return bad("server_name", "want a server name such as example.org, got %q", c.ServerName)
	}
	if host, port, err := net.SplitHostPort(c.Listen); err != nil || host == "" {
		return bad("listen", "want host:port, got %q", c.Listen)
	} else if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return bad("listen", "bad port %q", port)
	}
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("url", "want http(s)://host:port, got %q", c.URL)
	}
	if err := validLocalpart(c.BotLocalpart); err != nil {
		return bad("bot_localpart", "%v", err)
	}
	if err := validLocalpart(c.GhostPrefix); err != nil {
		return bad("ghost_prefix", "%v", err)
	}
	if strings.HasPrefix(c.BotLocalpart, c.GhostPrefix) {
		return bad("bot_localpart", "%q is in the ghost namespace %q", c.BotLocalpart, c.GhostPrefix)
	}
	if c.RegistrationID == "" || strings.ContainsAny(c.RegistrationID, " \t\n") {
		return bad("registration_id", "%q: empty or holds a space", c.RegistrationID)
	}
	return nil
}

func badKey(key, format string, args ...any) error {
	return fmt.Errorf("%w: matrix.%s: %s", ErrInvalidConfig, key, fmt.Sprintf(format, args...))
}

// validLocalpart accepts the historical-safe user ID local part characters
// [a-z0-9._=-], 1..64 bytes.
func validLocalpart(s string) error {
	if s == "" || len(s) > maxChatLen {
		return fmt.Errorf("%q: length not 1..%d", s, maxChatLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("._=-", c) >= 0) {
			return fmt.Errorf("%q: want [a-z0-9._=-]", s)
		}
	}
	return nil
}

func validChat(s string) error { return validLocalpart(s) }
