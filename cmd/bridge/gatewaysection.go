package main

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/core/gateway"
	"github.com/statusgate/statusgate/identity"
)

// The gateway's section of the configuration (gateway:): the puppets' secret, the routes
// loaded at start, delivery and flood-control settings; mapped onto core/gateway's Config.

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
	// SendFormat is the payload generation puppets post in: transit (2019 clients),
	// protobuf (2020 clients), both (one envelope each), or wrapped (protobuf inside a
	// ProtocolMessage with the puppet's X3DH bundle, as status-go sends from mid-2020
	// on; the bundles live in the store). Default both.
	SendFormat chat.SendFormat `yaml:"send_format"`
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
	// MaxParts bounds the messages one long text becomes under long_text split.
	// Default (and 0) gateway.DefaultMaxParts, 10.
	MaxParts int `yaml:"max_parts"`
	// RateLimit is the per-sender flood control at ingest (gateway.RateLimit).
	RateLimit RateLimitConfig `yaml:"rate_limit"`
	// LedgerRetentionDays: completed deliveries, and the events no pending delivery
	// refers to, are deleted once older than this many days (checked every 10
	// minutes); a reply to, an edit of or a deletion of an older message is then no
	// longer linked. Default (and 0) 30; -1 keeps them for ever.
	LedgerRetentionDays int `yaml:"ledger_retention_days"`
	// LedgerMaxBytes bounds the bytes of the events kept (their bodies): past it the
	// oldest with no pending delivery go first, whatever their age. Pending deliveries
	// are never deleted. Default (and 0) 256 MiB; -1: no cap.
	LedgerMaxBytes int64 `yaml:"ledger_max_bytes"`
	// Routes are the bridged conversations. Default none: the gateway bridges nothing.
	Routes []RouteConfig `yaml:"routes"`
}

// RateLimitConfig is the per-sender flood control at ingest: a token bucket per remote
// sender (Status keys included), a budget of new senders per network and minute.
type RateLimitConfig struct {
	// PerSecond is each sender's sustained rate, events a second. Default (and 0) 1.
	PerSecond float64 `yaml:"per_second"`
	// Burst is how many events a sender may send at once. Default (and 0) 10.
	Burst int `yaml:"burst"`
	// MaxSenders bounds the buckets kept (least recently seen evicted). Default (and 0)
	// 10000.
	MaxSenders int `yaml:"max_senders"`
	// NewSendersPerMinute bounds the senders without a bucket each network may add a
	// minute. Default (and 0) 120.
	NewSendersPerMinute int `yaml:"new_senders_per_minute"`
	// Exempt lists networks not limited. Default (absent) the api connector's network
	// (it limits its callers itself, answering 429: connectors.api.rate_limit); []
	// exempts none.
	Exempt []string `yaml:"exempt"`
	// Disabled turns flood control off. Default false.
	Disabled bool `yaml:"disabled"`
}

// RouteConfig is one bridged conversation: a Status public chat and its channels.
type RouteConfig struct {
	// Chat is the Status public chat, bare name ("status", no '#'). Required.
	Chat string `yaml:"chat"`
	// Channels are the remote channels mirroring the chat. Default none.
	Channels []RouteChannelConfig `yaml:"channels"`
	// LongText is split or truncate: what happens to a text longer than a destination
	// takes (gateway.LongText). Default (and "") split.
	LongText string `yaml:"long_text"`
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

func (g *GatewayConfig) withDefaults(dataDir string) {
	if g.SecretFile == "" {
		g.SecretFile = filepath.Join(dataDir, "gateway.secret")
	}
	if g.NickFormat == "" {
		g.NickFormat = gateway.DefaultNickFormat
	}
	if g.SendFormat == 0 {
		g.SendFormat = chat.SendBoth
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
	if g.LedgerRetentionDays == 0 {
		g.LedgerRetentionDays = defaultLedgerRetentionDays
	}
	if g.LedgerMaxBytes == 0 {
		g.LedgerMaxBytes = defaultLedgerMaxBytes
	}
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
	if g.MaxParts < 0 {
		errs = append(errs, fmt.Errorf("gateway.max_parts: %d is negative", g.MaxParts))
	}
	if g.LedgerRetentionDays < -1 || g.LedgerRetentionDays > 36500 {
		errs = append(errs, fmt.Errorf("gateway.ledger_retention_days: %d is not -1 (for ever) or between 1 and 36500", g.LedgerRetentionDays))
	}
	if g.LedgerMaxBytes < -1 || g.LedgerMaxBytes > 0 && g.LedgerMaxBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("gateway.ledger_max_bytes: %d is not -1 (no cap) or at least 1 MiB", g.LedgerMaxBytes))
	}
	rl := g.RateLimit
	if rl.PerSecond < 0 || math.IsNaN(rl.PerSecond) || math.IsInf(rl.PerSecond, 0) {
		errs = append(errs, fmt.Errorf("gateway.rate_limit.per_second: %v is not a rate", rl.PerSecond))
	}
	for _, f := range []struct {
		key string
		v   int
	}{{"burst", rl.Burst}, {"max_senders", rl.MaxSenders}, {"new_senders_per_minute", rl.NewSendersPerMinute}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("gateway.rate_limit.%s: %d is negative", f.key, f.v))
		}
	}
	for i, n := range rl.Exempt {
		if err := bridges.ValidNetwork(n); err != nil {
			errs = append(errs, fmt.Errorf("gateway.rate_limit.exempt[%d]: %w", i, err))
		}
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
		if _, err := gateway.ParseLongText(r.LongText); err != nil {
			errs = append(errs, fmt.Errorf("gateway.routes[%d].long_text: %w", i, err))
		}
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
		long, _ := gateway.ParseLongText(r.LongText) // validated
		routes[i] = gateway.Route{Chat: strings.TrimPrefix(r.Chat, "#"), Channels: chs, LongText: long}
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
		MaxParts:       g.MaxParts,
		RateLimit: gateway.RateLimit{PerSecond: g.RateLimit.PerSecond, Burst: g.RateLimit.Burst,
			MaxSenders: g.RateLimit.MaxSenders, NewSendersPerMinute: g.RateLimit.NewSendersPerMinute,
			Exempt: slices.Clone(g.RateLimit.Exempt), Disabled: g.RateLimit.Disabled},
	}
}
