package slack

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/statusgate/statusgate/bridges"
)

// Defaults for the zero values of Config.
const (
	DefaultName           = "slack"
	DefaultAPIURL         = "https://slack.com/api/"
	DefaultRatePerChannel = 1.0 // messages per second
	DefaultBurst          = 3
	DefaultListen         = "127.0.0.1:8490"
	DefaultEventsPath     = "/slack/events"
)

// Transports: how Slack's events reach the connector (Config.Transport).
const (
	TransportSocket = "socket" // Socket Mode over the app-level token; the default
	TransportHTTP   = "http"   // the Events API: Slack POSTs signed requests to Listen
)

// Config configures one slack connector (one Slack app in one workspace). It is a
// value: New copies it and the connector never changes it. Every field documents its
// zero-value default; the yaml tags are the keys of cmd/bridge's connectors.slack[i].
type Config struct {
	// Name is the network name (bridges.ValidNetwork) and the namespace of every
	// ID this connector builds. Default "slack".
	Name string `yaml:"name"`
	// BotToken is the bot user OAuth token, "xoxb-…", with the scopes
	// chat:write, chat:write.customize, channels:history, groups:history and
	// users:read. Required. Secret: redacted by String and LogValue.
	BotToken string `yaml:"bot_token"`
	// AppToken is the app-level token, "xapp-…", with connections:write,
	// for Socket Mode. Required with the socket transport, unused with http. Secret:
	// redacted by String and LogValue.
	AppToken string `yaml:"app_token"`
	// Transport is how events reach the connector: "socket" (Socket Mode,
	// the default: no public endpoint needed) or "http" (the Events API: Slack POSTs
	// each event, signed with SigningSecret, to an HTTPS Request URL that a reverse
	// proxy forwards to Listen + EventsPath).
	Transport string `yaml:"transport"`
	// SigningSecret is the app's signing secret (Basic Information →
	// App Credentials), which verifies every Events API request. Required with the http
	// transport, unused with socket. Secret: redacted by String and LogValue.
	SigningSecret string `yaml:"signing_secret"`
	// Listen is the host:port the Events API endpoint listens on (http
	// transport only). Default "127.0.0.1:8490": put a TLS reverse proxy in front.
	Listen string `yaml:"listen"`
	// EventsPath is the URL path of the Events API endpoint (http
	// transport only). Default "/slack/events".
	EventsPath string `yaml:"events_path"`
	// APIURL is the Web API base URL, ending in "/". Default
	// "https://slack.com/api/"; tests point it at test/slackfake.
	APIURL string `yaml:"api_url"`
	// Channels are the Slack channel IDs ("C0123ABCD", or "G…" for old
	// private channels) this connector serves; routes name them as
	// "<name>:<channel ID>". Required, unique.
	Channels []string `yaml:"channels"`
	// IconURLBase, when set, gives each relayed Status author the Slack
	// icon IconURLBase + the URL-escaped sender ID (the gateway's identicon URL). Empty
	// (the default): no icon override, Slack shows the app's icon.
	IconURLBase string `yaml:"icon_url_base"`
	// RatePerChannel is the sustained rate of posts, edits and
	// deletes per channel, in messages per second. Default 1 (Slack's chat.postMessage
	// guidance).
	RatePerChannel float64 `yaml:"rate_per_channel"`
	// Burst is how many messages may go out at once per channel before
	// RatePerChannel applies. Default 3.
	Burst int `yaml:"burst"`
}

// Network is the network name after defaults: Name, or DefaultName.
func (c Config) Network() string { return c.withDefaults().Name }

func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.APIURL == "" {
		c.APIURL = DefaultAPIURL
	}
	if c.Transport == "" {
		c.Transport = TransportSocket
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.EventsPath == "" {
		c.EventsPath = DefaultEventsPath
	}
	if c.RatePerChannel == 0 {
		c.RatePerChannel = DefaultRatePerChannel
	}
	if c.Burst == 0 {
		c.Burst = DefaultBurst
	}
	c.Channels = append([]string(nil), c.Channels...)
	return c
}

// Validate returns nil if c is usable (zero values stand for their defaults), else an
// error wrapping ErrInvalidConfig naming the first bad key, such as
// "slack.bot_token: empty". Tokens never appear in errors.
func (c Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%w: slack.%s: %s", ErrInvalidConfig, key, fmt.Sprintf(format, args...))
	}
	name := c.Name
	if name == "" {
		name = DefaultName
	}
	if err := bridges.ValidNetwork(name); err != nil {
		return bad("name", "%v", err)
	}
	transport := c.Transport
	switch transport {
	case "", TransportSocket:
		transport = TransportSocket
	case TransportHTTP:
	default:
		return bad("transport", "%q is neither %q nor %q", c.Transport, TransportSocket, TransportHTTP)
	}
	badChars := func(s string) bool {
		return strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r > unicode.MaxASCII }) >= 0
	}
	for _, tok := range []struct {
		key, val, prefix string
		required         bool
	}{
		{"bot_token", c.BotToken, "xoxb-", true},
		{"app_token", c.AppToken, "xapp-", transport == TransportSocket},
		{"signing_secret", c.SigningSecret, "", transport == TransportHTTP},
	} {
		switch {
		case tok.val == "" && tok.required:
			return bad(tok.key, "empty (required with transport %q)", transport)
		case tok.val == "":
		case !strings.HasPrefix(tok.val, tok.prefix):
			return bad(tok.key, "does not start with %q", tok.prefix)
		case badChars(tok.val):
			return bad(tok.key, "holds whitespace, control or non-ASCII characters")
		}
	}
	if c.Listen != "" {
		host, port, err := net.SplitHostPort(c.Listen)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 || badChars(host) {
			return bad("listen", "%q is not a host:port", c.Listen)
		}
	}
	if c.EventsPath != "" {
		if u, err := url.Parse(c.EventsPath); err != nil || !strings.HasPrefix(c.EventsPath, "/") || u.Path != c.EventsPath || badChars(c.EventsPath) {
			return bad("events_path", "%q is not a URL path starting with /", c.EventsPath)
		}
	}
	if c.APIURL != "" {
		u, err := url.Parse(c.APIURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return bad("api_url", "%q is not an http(s) URL", c.APIURL)
		}
		if !strings.HasSuffix(c.APIURL, "/") {
			return bad("api_url", "%q does not end in /", c.APIURL)
		}
	}
	if len(c.Channels) == 0 {
		return bad("channels", "empty")
	}
	seen := make(map[string]bool, len(c.Channels))
	for i, ch := range c.Channels {
		key := fmt.Sprintf("channels[%d]", i)
		if !validSlackID(ch) || !strings.ContainsRune("CGD", rune(ch[0])) {
			return bad(key, "%q is not a Slack channel ID (C…, G… or D…)", ch)
		}
		if seen[ch] {
			return bad(key, "%q listed twice", ch)
		}
		seen[ch] = true
	}
	if c.IconURLBase != "" {
		u, err := url.Parse(c.IconURLBase)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return bad("icon_url_base", "%q is not an http(s) URL", c.IconURLBase)
		}
	}
	if c.RatePerChannel < 0 {
		return bad("rate_per_channel", "negative")
	}
	if c.Burst < 0 {
		return bad("burst", "negative")
	}
	return nil
}

// validSlackID reports whether s looks like a Slack object ID: 2 to 32 upper-case
// letters and digits.
func validSlackID(s string) bool {
	if len(s) < 2 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// String describes c with the tokens and the signing secret redacted, so that %v and
// %+v never print them.
func (c Config) String() string {
	return fmt.Sprintf("slack.Config{Name:%q BotToken:%s AppToken:%s Transport:%q SigningSecret:%s Listen:%q EventsPath:%q APIURL:%q Channels:%q IconURLBase:%q RatePerChannel:%g Burst:%d}",
		c.Name, redacted(c.BotToken), redacted(c.AppToken), c.Transport, redacted(c.SigningSecret), c.Listen, c.EventsPath,
		c.APIURL, c.Channels, c.IconURLBase, c.RatePerChannel, c.Burst)
}

// GoString is String, so that %#v redacts the tokens too.
func (c Config) GoString() string { return c.String() }

// LogValue logs c with the tokens redacted (slog.LogValuer).
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("name", c.Name), slog.String("bot_token", redacted(c.BotToken)),
		slog.String("app_token", redacted(c.AppToken)), slog.String("transport", c.Transport),
		slog.String("signing_secret", redacted(c.SigningSecret)), slog.String("listen", c.Listen),
		slog.String("events_path", c.EventsPath), slog.String("api_url", c.APIURL),
		slog.Any("channels", c.Channels), slog.String("icon_url_base", c.IconURLBase),
		slog.Float64("rate_per_channel", c.RatePerChannel), slog.Int("burst", c.Burst),
	)
}

func redacted(secret string) string {
	if secret == "" {
		return `""`
	}
	return "[redacted]"
}

// retry delays of Run; not configuration.
const (
	requestTimeout = 30 * time.Second
)
