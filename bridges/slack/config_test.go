package slack

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/statusgate/statusgate/bridges"
)

func validConfig() Config {
	return Config{BotToken: "xoxb-1-secret", AppToken: "xapp-1-secret", Channels: []string{"C0123", "G0456"}}
}

func TestConfig_Validate(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range []struct {
		key  string
		edit func(*Config)
	}{
		{"slack.name", func(c *Config) { c.Name = "Slack!" }},
		{"slack.bot_token: empty", func(c *Config) { c.BotToken = "" }},
		{"slack.bot_token", func(c *Config) { c.BotToken = "xapp-1" }},
		{"slack.app_token", func(c *Config) { c.AppToken = "xoxb-1" }},
		{"slack.app_token", func(c *Config) { c.AppToken = "xapp-1 2" }},
		{"slack.api_url", func(c *Config) { c.APIURL = "ftp://x/" }},
		{"slack.api_url", func(c *Config) { c.APIURL = "https://x/api" }},
		{"slack.channels: empty", func(c *Config) { c.Channels = nil }},
		{"slack.channels[1]", func(c *Config) { c.Channels = []string{"C1", "#general"} }},
		{"slack.channels[1]", func(c *Config) { c.Channels = []string{"C1", "C1"} }},
		{"slack.channels[0]", func(c *Config) { c.Channels = []string{"U123"} }},
		{"slack.icon_url_base", func(c *Config) { c.IconURLBase = "/icons/" }},
		{"slack.rate_per_channel", func(c *Config) { c.RatePerChannel = -1 }},
		{"slack.burst", func(c *Config) { c.Burst = -1 }},
	} {
		cfg := validConfig()
		tc.edit(&cfg)
		err := cfg.Validate()
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s: Validate() = %v, want an error naming %q", tc.key, err, tc.key)
		}
		if err != nil && showsSecret(err.Error(), validConfig()) {
			t.Errorf("%s: error shows a token: %v", tc.key, err)
		}
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted the config", tc.key)
		}
	}
}

// showsSecret reports whether s holds one of the secrets of cfg.
func showsSecret(s string, cfg Config) bool {
	for _, secret := range []string{cfg.BotToken, cfg.AppToken, cfg.SigningSecret} {
		if secret != "" && strings.Contains(s, secret) {
			return true
		}
	}
	return false
}

func TestConfig_redactsTokens(t *testing.T) {
	cfg := validConfig()
	cfg.SigningSecret = "8f742231b10e8888abcd99yyyzzz85a5"
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "cfg", cfg)
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), logs.String()} {
		if showsSecret(s, cfg) {
			t.Errorf("secret shown: %s", s)
		}
	}
}

// The http transport needs the signing secret and not the app token; socket the
// reverse.
func TestConfig_transport(t *testing.T) {
	httpCfg := validConfig()
	httpCfg.Transport, httpCfg.AppToken, httpCfg.SigningSecret = TransportHTTP, "", "8f742231b10e8888abcd99yyyzzz85a5"
	if err := httpCfg.Validate(); err != nil {
		t.Fatalf("http transport without app token: %v", err)
	}
	c, err := New(httpCfg)
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.Listen != DefaultListen || c.cfg.EventsPath != DefaultEventsPath {
		t.Errorf("http defaults not applied: %v", c.cfg)
	}
	socketCfg := validConfig()
	socketCfg.SigningSecret = "" // unused with socket
	if c, err := New(socketCfg); err != nil || c.cfg.Transport != TransportSocket {
		t.Errorf("socket default: %v, %v", c, err)
	}
	for _, tc := range []struct {
		key  string
		edit func(*Config)
	}{
		{"slack.signing_secret: empty", func(c *Config) { c.SigningSecret = "" }},
		{"slack.signing_secret", func(c *Config) { c.SigningSecret = "a b" }},
		{"slack.transport", func(c *Config) { c.Transport = "websocket" }},
		{"slack.app_token", func(c *Config) { c.AppToken = "xoxb-1" }}, // optional, but checked when set
		{"slack.listen", func(c *Config) { c.Listen = "8490" }},
		{"slack.listen", func(c *Config) { c.Listen = "127.0.0.1:http" }},
		{"slack.listen", func(c *Config) { c.Listen = "127.0.0.1:70000" }},
		{"slack.events_path", func(c *Config) { c.EventsPath = "slack/events" }},
		{"slack.events_path", func(c *Config) { c.EventsPath = "/slack/events?x=1" }},
		{"slack.app_token: empty", func(c *Config) { c.Transport, c.AppToken = TransportSocket, "" }},
	} {
		cfg := httpCfg
		tc.edit(&cfg)
		err := cfg.Validate()
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s: Validate() = %v, want an error naming %q", tc.key, err, tc.key)
		}
		if err != nil && showsSecret(err.Error(), httpCfg) {
			t.Errorf("%s: error shows a secret: %v", tc.key, err)
		}
	}
}

func TestNew_defaults(t *testing.T) {
	c, err := New(validConfig())
	if err != nil {
		t.Fatal(err)
	}
	if c.Name() != "slack" || c.cfg.APIURL != DefaultAPIURL || c.cfg.RatePerChannel != 1 || c.cfg.Burst != 3 {
		t.Errorf("defaults not applied: %v", c.cfg)
	}
	if caps := c.Capabilities(); !caps.Replies {
		t.Errorf("capabilities %+v", caps)
	}
}

func TestIDs_roundTrip(t *testing.T) {
	id, err := msgID("slack", "C0123", "1795423259.000100")
	if err != nil {
		t.Fatal(err)
	}
	if ch, ts, ok := parseMsgID("slack", id); !ok || ch != "C0123" || ts != "1795423259.000100" {
		t.Errorf("parseMsgID(%s) = %q %q %v", id, ch, ts, ok)
	}
	edit, _ := editID("slack", "C0123", "1.2", "3.4")
	del, _ := deleteID("slack", "C0123", "1.2")
	for _, bad := range []string{string(edit), string(del), "matrix:C0123/1.2", "slack:C0123"} {
		if _, _, ok := parseMsgID("slack", bridgesMsg(bad)); ok {
			t.Errorf("parseMsgID(%s) accepted", bad)
		}
	}
}

func TestUserCache_bounded(t *testing.T) {
	u := newUserCache(3, 0)
	now := timeZero.Add(1)
	for i := range 10 {
		u.put(fmt.Sprint(i), "n", now.Add(1e9))
	}
	if u.len() != 3 {
		t.Errorf("cache holds %d names, want 3", u.len())
	}
	u.put("x", "X", now.Add(-1))
	if _, ok := u.get("x", now); ok {
		t.Errorf("expired entry returned")
	}
}

var timeZero = time.Unix(0, 0)

func bridgesMsg(s string) bridges.RemoteMsgID { return bridges.RemoteMsgID(s) }
