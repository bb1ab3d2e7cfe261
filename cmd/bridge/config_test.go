package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/core/gateway"
)

func TestLoadConfig_gatewayDefaults(t *testing.T) {
	dir := t.TempDir()
	c, err := loadConfig(writeConfig(t, "data_dir: "+dir+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	g := c.Gateway
	if g.NickFormat != gateway.DefaultNickFormat || g.NoNick || len(g.Accounts) != 0 || len(g.Routes) != 0 ||
		g.QueueLimit != gateway.DefaultQueueLimit || g.MaxAttempts != gateway.DefaultMaxAttempts ||
		g.RetryMin != time.Second || g.RetryMax != 5*time.Minute || g.AttemptTimeout != 30*time.Second {
		t.Errorf("gateway defaults: %+v", g)
	}
	if c.HTTP.Listen != "" {
		t.Errorf("http.listen default %q, want off", c.HTTP.Listen)
	}
	a := c.Connectors.API
	if a.Enabled == nil || *a.Enabled || a.Listen != "127.0.0.1:8480" || a.TokenFile != filepath.Join(dir, "api.token") {
		t.Errorf("connectors.api defaults: %+v", a)
	}
}

// TestLoadConfig_embeddedGateway checks the gateway sections of config.example.yaml.
func TestLoadConfig_embeddedGateway(t *testing.T) {
	c, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	gc := c.Gateway.gatewayConfig()
	want := []gateway.Route{{Chat: "status", Channels: []gateway.RouteChannel{{Channel: "api:status", Direction: gateway.DirBoth}}}}
	if len(gc.Routes) != 1 || gc.Routes[0].Chat != want[0].Chat || len(gc.Routes[0].Channels) != 1 ||
		gc.Routes[0].Channels[0] != want[0].Channels[0] {
		t.Errorf("routes %+v, want %+v", gc.Routes, want)
	}
	if gc.NickFormat != gateway.DefaultNickFormat || gc.QueueLimit != 10000 || gc.MaxAttempts != 12 ||
		gc.RetryMin != time.Second || gc.RetryMax != 5*time.Minute || gc.AttemptTimeout != 30*time.Second {
		t.Errorf("gateway config: %+v", gc)
	}
	if c.HTTP.Listen != "127.0.0.1:8481" || !*c.Connectors.API.Enabled || c.Connectors.API.Listen != "127.0.0.1:8480" ||
		c.Connectors.API.TokenFile != filepath.Join("data", "api.token") {
		t.Errorf("http %+v, api %+v", c.HTTP, c.Connectors.API)
	}
}

func TestGatewayConfig_mapping(t *testing.T) {
	c, err := loadConfig(writeConfig(t, `
gateway:
  nick_format: "<{nick}> "
  no_nick: true
  accounts: {api: main}
  queue_limit: 5
  max_attempts: 3
  retry_min: 250ms
  retry_max: 1h
  attempt_timeout: 2s
  max_parts: 4
  rate_limit: {per_second: 0.5, burst: 3, max_senders: 7, new_senders_per_minute: 9, exempt: []}
  routes:
    - chat: "#status"
      long_text: truncate
      channels:
        - {channel: "api:a", direction: in}
        - {channel: "api:b", direction: out}
        - {channel: "api:c"}
    - chat: other
connectors:
  api: {enabled: true, listen: "[::1]:0", token_file: /x/t}
http: {listen: ":9000"}
`))
	if err != nil {
		t.Fatal(err)
	}
	gc := c.Gateway.gatewayConfig()
	if gc.NickFormat != "<{nick}> " || !gc.NoNick || gc.Accounts["api"] != "main" || gc.QueueLimit != 5 ||
		gc.MaxAttempts != 3 || gc.RetryMin != 250*time.Millisecond || gc.RetryMax != time.Hour ||
		gc.AttemptTimeout != 2*time.Second || gc.MaxParts != 4 || gc.Logger != nil || gc.Clock != nil ||
		gc.RateLimit.PerSecond != 0.5 || gc.RateLimit.Burst != 3 || gc.RateLimit.MaxSenders != 7 ||
		gc.RateLimit.NewSendersPerMinute != 9 || gc.RateLimit.Exempt == nil || len(gc.RateLimit.Exempt) != 0 {
		t.Errorf("gateway config: %+v", gc)
	}
	if len(gc.Routes) != 2 || gc.Routes[0].Chat != "status" || gc.Routes[1].Chat != "other" || len(gc.Routes[1].Channels) != 0 ||
		gc.Routes[0].LongText != gateway.LongTruncate || gc.Routes[1].LongText != gateway.LongSplit {
		t.Fatalf("routes: %+v", gc.Routes)
	}
	wantCh := []gateway.RouteChannel{
		{Channel: bridges.ChannelID("api:a"), Direction: gateway.DirIn},
		{Channel: bridges.ChannelID("api:b"), Direction: gateway.DirOut},
		{Channel: bridges.ChannelID("api:c"), Direction: gateway.DirBoth},
	}
	for i, w := range wantCh {
		if got := gc.Routes[0].Channels[i]; got != w {
			t.Errorf("channel %d: %+v, want %+v", i, got, w)
		}
	}
	if err := gc.Validate(); err != nil {
		t.Errorf("mapped config does not validate: %v", err)
	}
	if c.HTTP.Listen != ":9000" || c.Connectors.API.Listen != "[::1]:0" || c.Connectors.API.TokenFile != "/x/t" {
		t.Errorf("http %+v, api %+v", c.HTTP, c.Connectors.API)
	}
}

func TestLoadConfig_gatewayRejects(t *testing.T) {
	const api = "connectors: {api: {enabled: true}}\n"
	cases := []rejectCase{
		{"no connector", "gateway: {routes: [{chat: s, channels: [{channel: 'api:x'}, {channel: 'irc:libera/#s'}]}]}\n" + api,
			`gateway.routes[0].channels[1].channel: no enabled connector for network "irc"`},
		{"api disabled", "gateway: {routes: [{chat: s, channels: [{channel: 'api:x'}]}]}\n",
			`gateway.routes[0].channels[0].channel: no enabled connector for network "api"`},
		{"bad direction", "gateway: {routes: [{chat: s, channels: [{channel: 'api:x', direction: sideways}]}]}\n" + api,
			"gateway.routes[0].channels[0].direction: "},
		{"empty chat", "gateway: {routes: [{chat: '', channels: [{channel: 'api:x'}]}]}\n" + api, "gateway.routes[0].chat: empty"},
		{"duplicate chat", "gateway: {routes: [{chat: s}, {chat: '#s'}]}\n", "gateway.routes[1].chat: "},
		{"duplicate channel", "gateway: {routes: [{chat: s, channels: [{channel: 'api:x'}]}, {chat: t, channels: [{channel: 'api:x'}]}]}\n" + api,
			"gateway.routes[1].channels[0].channel: "},
		{"bad channel", "gateway: {routes: [{chat: s, channels: [{channel: 'nonetwork'}]}]}\n", "gateway.routes[0].channels[0].channel: "},
		{"status channel", "gateway: {routes: [{chat: s, channels: [{channel: 'status:x'}]}]}\n", "gateway.routes[0].channels[0].channel: "},
		{"negative retry", "gateway: {retry_min: -1s}\n", "gateway.retry_min: -1s is negative"},
		{"max below min", "gateway: {retry_min: 1m, retry_max: 1s}\n", "gateway.retry_max: "},
		{"negative timeout", "gateway: {attempt_timeout: -5s}\n", "gateway.attempt_timeout: "},
		{"negative queue", "gateway: {queue_limit: -1}\n", "gateway.queue_limit: "},
		{"negative attempts", "gateway: {max_attempts: -1}\n", "gateway.max_attempts: "},
		{"negative parts", "gateway: {max_parts: -1}\n", "gateway.max_parts: "},
		{"negative rate", "gateway: {rate_limit: {per_second: -1}}\n", "gateway.rate_limit.per_second: "},
		{"negative burst", "gateway: {rate_limit: {burst: -1}}\n", "gateway.rate_limit.burst: "},
		{"bad exempt", "gateway: {rate_limit: {exempt: ['Not A Net']}}\n", "gateway.rate_limit.exempt[0]: "},
		{"bad long_text", "gateway: {routes: [{chat: s, long_text: shorten}]}\n", "gateway.routes[0].long_text: "},
		{"bad duration", "gateway: {retry_max: soon}\n", "retry_max"},
		{"integer duration", "gateway: {retry_max: 5}\n", "time.Duration"},
		{"bad account network", "gateway: {accounts: {Bad: x}}\n", "gateway.accounts.Bad: "},
		{"empty account", "gateway: {accounts: {irc: ''}}\n", "gateway.accounts.irc: "},
		{"nick line break", "gateway: {nick_format: \"a\\nb\"}\n", "gateway.nick_format: "},
		{"nick line break with routes", "gateway: {nick_format: \"a\\nb\", routes: [{chat: s}]}\n", "gateway.nick_format: "},
		{"unknown gateway key", "gateway: {route: []}\n", "route"},
		{"bad http listen", "http: {listen: localhost}\n", "http.listen: "},
		{"bad api listen", "connectors: {api: {listen: nope}}\n", "connectors.api.listen: "},
		{"blank token file", "connectors: {api: {token_file: ' '}}\n", "connectors.api.token_file: "},
		{"unknown connector", "connectors: {irc: {}}\n", "irc"},
	}
	checkRejects(t, cases)
}

// TestConfigValidate_reportsEvery checks that Validate reports every problem, each as
// its own error starting with its dotted key.
func TestConfigValidate_reportsEvery(t *testing.T) {
	var c Config
	c.withDefaults()
	c.Log.Level = "loud"
	c.Node.StaticPeers = []string{"nope", "enode://x@1.2.3.4:1"}
	c.Node.MaxPeers = -1
	c.Store.Driver = "mysql"
	c.Mailserver.RequestBurst = -1
	c.Mailserver.Password = " "
	c.Gateway.RetryMin = -time.Second
	c.Gateway.Routes = []RouteConfig{{Chat: "s", Channels: []RouteChannelConfig{{Channel: "irc:x", Direction: "up"}}}}
	c.HTTP.Listen = "nope"
	errs := flattenErrors(c.Validate())
	want := []string{
		"log.level", "node.static_peers[0]", "node.static_peers[1]", "node.max_peers", "store.driver",
		"mailserver.request_burst", "mailserver.password", "gateway.retry_min",
		"gateway.routes[0].channels[0].direction", "gateway.routes[0].channels[0].channel", "http.listen",
	}
	keys := map[string]bool{}
	for _, err := range errs {
		key, _, ok := strings.Cut(err.Error(), ": ")
		if !ok || !keyPathRE.MatchString(key) {
			t.Errorf("error does not start with a key path: %v", err)
		}
		keys[key] = true
	}
	for _, k := range want {
		if !keys[k] {
			t.Errorf("no error for %s; got:\n%v", k, errors.Join(errs...))
		}
	}
}

func TestLoadToken_refuses(t *testing.T) {
	dir := t.TempDir()
	good := strings.Repeat("0f", 32)
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if tok, err := loadToken(write("ok", "\n "+good+"\n\n", 0o600)); err != nil || tok != good {
		t.Errorf("good token: %q %v", tok, err)
	}
	p := write("open", good, 0o640)
	if _, err := loadToken(p); err == nil || !strings.Contains(err.Error(), "chmod 600") || strings.Contains(err.Error(), good) {
		t.Errorf("0640 token: %v", err)
	}
	if _, err := loadToken(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "bridge init -keys") ||
		!errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing token: %v", err)
	}
	for name, body := range map[string]string{"short": "abcd\n", "not hex": strings.Repeat("zz", 32), "empty": ""} {
		if _, err := loadToken(write(name, body, 0o600)); err == nil {
			t.Errorf("%s token accepted", name)
		} else if body != "" && strings.Contains(err.Error(), strings.TrimSpace(body)) {
			t.Errorf("%s: error quotes the file: %v", name, err)
		}
	}
}

// rejectCase is a config body that loadConfig must refuse with an error containing want
// (the dotted key, or the reason).
type rejectCase struct{ name, body, want string }

// checkRejects loads each case's body and checks that it is refused as the case says.
func checkRejects(t *testing.T, cases []rejectCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(writeConfig(t, tc.body))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not contain %q: %v", tc.want, err)
			}
		})
	}
}

// checkAccepts loads each body and checks that it is accepted.
func checkAccepts(t *testing.T, bodies ...string) {
	t.Helper()
	for _, body := range bodies {
		if _, err := loadConfig(writeConfig(t, body)); err != nil {
			t.Errorf("%q: %v", body, err)
		}
	}
}
