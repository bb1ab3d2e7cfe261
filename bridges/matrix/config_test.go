package matrix

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func validConfig() Config {
	return Config{HomeserverURL: "http://127.0.0.1:8008", ServerName: "example.org",
		ASToken: "as-secret", HSToken: "hs-secret", Rooms: []RoomConfig{{Chat: "dev"}, {Chat: "ops", Room: "!abc:example.org"}}}
}

func TestConfig_validate(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for key, mut := range map[string]func(*Config){
		"homeserver_url":  func(c *Config) { c.HomeserverURL = "ftp://x" },
		"server_name":     func(c *Config) { c.ServerName = "" },
		"as_token":        func(c *Config) { c.ASToken = "" },
		"hs_token":        func(c *Config) { c.HSToken = c.ASToken },
		"listen":          func(c *Config) { c.Listen = "nope" },
		"name":            func(c *Config) { c.Name = "Matrix!" },
		"bot_localpart":   func(c *Config) { c.BotLocalpart = "status_bot" },
		"ghost_prefix":    func(c *Config) { c.GhostPrefix = "Status " },
		"rooms":           func(c *Config) { c.Rooms = nil },
		"rooms[1].chat":   func(c *Config) { c.Rooms[1].Chat = "dev" },
		"rooms[0].chat":   func(c *Config) { c.Rooms[0].Chat = "Dev Chat" },
		"rooms[1].room":   func(c *Config) { c.Rooms[1].Room = "abc" },
		"avatar_url_base": func(c *Config) { c.AvatarURLBase = "file:///tmp/" },
	} {
		c := validConfig()
		c.Rooms = append([]RoomConfig(nil), c.Rooms...)
		mut(&c)
		err := c.Validate()
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "matrix."+key+":") {
			t.Errorf("%s: err = %v", key, err)
		}
		if _, err := New(c); err == nil {
			t.Errorf("%s: New accepted it", key)
		}
	}
}

func TestConfig_secretsRedacted(t *testing.T) {
	c := validConfig()
	for _, s := range []string{c.String(), fmt.Sprint(c.LogValue())} {
		if strings.Contains(s, "as-secret") || strings.Contains(s, "hs-secret") || !strings.Contains(s, "REDACTED") {
			t.Errorf("not redacted: %s", s)
		}
	}
}

func TestGenerateRegistration(t *testing.T) {
	raw, cfg, err := GenerateRegistration(Config{ServerName: "example.org"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.ASToken) != 64 || len(cfg.HSToken) != 64 || cfg.ASToken == cfg.HSToken {
		t.Errorf("tokens %q %q", cfg.ASToken, cfg.HSToken)
	}
	var reg struct {
		ID, URL, AsToken, HsToken, SenderLocalpart string
		RateLimited                                bool `yaml:"rate_limited"`
		Namespaces                                 map[string][]struct {
			Exclusive bool
			Regex     string
		}
	}
	if err := yaml.Unmarshal(raw, &reg); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = yaml.Unmarshal(raw, &m)
	if m["as_token"] != cfg.ASToken || m["hs_token"] != cfg.HSToken || m["sender_localpart"] != "statusbot" ||
		m["url"] != "http://127.0.0.1:29333" || m["id"] != "statusgate" || m["rate_limited"] != false {
		t.Errorf("registration = %v", m)
	}
	u, a := reg.Namespaces["users"], reg.Namespaces["aliases"]
	if len(u) != 1 || u[0].Regex != `@status_.*:example\.org` || !u[0].Exclusive ||
		len(a) != 1 || a[0].Regex != `#status_.*:example\.org` || !a[0].Exclusive {
		t.Errorf("namespaces = %+v\n%s", reg.Namespaces, raw)
	}
	_, cfg2, _ := GenerateRegistration(Config{ServerName: "example.org"})
	if cfg2.ASToken == cfg.ASToken {
		t.Error("tokens not fresh")
	}
	if _, _, err := GenerateRegistration(Config{}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("no server name: %v", err)
	}
}

func TestGhostLocalpart_stableAndValid(t *testing.T) {
	a := ghostLocalpart("status_", "status:0x04ab")
	if a != ghostLocalpart("status_", "status:0x04ab") || a == ghostLocalpart("status_", "status:0x04ac") {
		t.Error("not deterministic or collides")
	}
	if err := validLocalpart(a); err != nil || len(a) != len("status_")+32 {
		t.Errorf("%q: %v", a, err)
	}
}
