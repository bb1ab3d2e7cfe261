package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/core/status"
)

// StatusNetwork is the network name of the Status side in events and IDs: a Status
// message has origin channel "status:<chat>" and ID "status:0x<message id>", its author
// "status:0x04<chat key>".
const StatusNetwork = "status"

// Direction says which way messages flow between a route's Status chat and one of its
// channels.
type Direction uint8

// The directions. The zero value is DirBoth.
const (
	DirBoth Direction = iota // both ways
	DirIn                    // from the channel into the route only (the channel is a source)
	DirOut                   // from the route out to the channel only (a mirror)
)

// ParseDirection reads "both", "in" or "out".
func ParseDirection(s string) (Direction, error) {
	switch s {
	case "both", "":
		return DirBoth, nil
	case "in":
		return DirIn, nil
	case "out":
		return DirOut, nil
	}
	return 0, fmt.Errorf("direction %q is not both, in or out", s)
}

// String returns "both", "in" or "out".
func (d Direction) String() string {
	switch d {
	case DirIn:
		return "in"
	case DirOut:
		return "out"
	}
	return "both"
}

// Route is one bridged conversation: a Status public chat and the channels on other
// networks that mirror it.
type Route struct {
	// Chat is the Status public chat name, bare (no '#').
	Chat string
	// Channels are the remote channels, each in one route at most.
	Channels []RouteChannel
	// LongText says what happens to a text longer than a destination takes (Status:
	// 4,096 characters with the nick prefix; a connector: its Capabilities.MaxTextLen):
	// split into marked parts (the default) or cut with a visible marker.
	LongText LongText
}

// RouteChannel is one channel of a route.
type RouteChannel struct {
	Channel   bridges.ChannelID
	Direction Direction
}

// Defaults of Config.
const (
	DefaultNickFormat     = "[{network}] <{nick}> "
	DefaultQueueLimit     = 10_000
	DefaultMaxAttempts    = 12
	DefaultRetryMin       = time.Second
	DefaultRetryMax       = 5 * time.Minute
	DefaultAttemptTimeout = 30 * time.Second
	DefaultMaxParts       = 10
)

// Config configures a Gateway. Every zero value means the documented default.
type Config struct {
	// Routes are the bridged conversations. At least one.
	Routes []Route
	// NickFormat prefixes the text a puppet posts into Status, because Whisper-era
	// clients show only the alias of the key: {nick} is the sender's display name (or
	// user ID), {network} the origin network, {channel} the origin channel ID. Default
	// DefaultNickFormat. NoNick turns the prefix off.
	NickFormat string
	// NoNick posts remote users' text into Status without a prefix.
	NoNick bool
	// Accounts names the gateway's account on each network, the Account of the
	// puppet IDs of that network's users (identity.PuppetID). Default: the network name.
	// Changing it changes every puppet key of the network.
	Accounts map[string]string
	// QueueLimit bounds each destination's pending outbox entries. Overflow policy:
	// fail the oldest, visibly: while a destination holds more, its oldest entries are
	// marked failed ("queue overflow") without an attempt, logged and counted, and
	// stay in the ledger. Ingestion never waits for a destination, so a network that
	// is down for long never stalls the others, and when it returns it gets the
	// freshest messages. Default DefaultQueueLimit.
	QueueLimit int
	// MaxAttempts is how often a delivery is tried before it ends failed (a permanent
	// error ends it at once). Default DefaultMaxAttempts.
	MaxAttempts int
	// RetryMin and RetryMax bound the exponential back-off between attempts.
	RetryMin, RetryMax time.Duration
	// AttemptTimeout bounds one delivery attempt. Default DefaultAttemptTimeout.
	AttemptTimeout time.Duration
	// MaxParts bounds how many messages one long text becomes under LongSplit: the
	// last part is cut with a marker ("[…]"), so that one paste cannot flood a channel.
	// Default DefaultMaxParts.
	MaxParts int
	// RateLimit is the per-sender flood control at ingest.
	RateLimit RateLimit
	// Logger receives the gateway's logs. Default: discard.
	Logger *slog.Logger
	// Clock is the time source of every reading, deadline and timer. Default
	// SystemClock.
	Clock Clock
}

func (c *Config) withDefaults() {
	if c.NickFormat == "" {
		c.NickFormat = DefaultNickFormat
	}
	if c.QueueLimit <= 0 {
		c.QueueLimit = DefaultQueueLimit
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.RetryMin <= 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax <= 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = c.RetryMin
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = DefaultAttemptTimeout
	}
	c.RateLimit.withDefaults()
	if c.MaxParts <= 0 {
		c.MaxParts = DefaultMaxParts
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
}

// Validate reports every problem of the routes, one error per problem (errors.Join),
// each naming routes[i] or routes[i].channels[j]. Chat names are checked as the Status
// SDK checks them when the gateway joins them.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Routes) == 0 {
		errs = append(errs, errors.New("routes: none configured"))
	}
	chats := map[string]int{}
	channels := map[bridges.ChannelID]string{}
	for i, r := range c.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		errs = append(errs, r.problems(key)...)
		name := strings.TrimPrefix(r.Chat, "#")
		if j, dup := chats[name]; dup && name != "" {
			errs = append(errs, fmt.Errorf("%s.chat: %q is also routes[%d]", key, name, j))
		} else {
			chats[name] = i
		}
		for j, ch := range r.Channels {
			ckey := fmt.Sprintf("%s.channels[%d]", key, j)
			if ch.Channel.Validate() != nil {
				continue // reported by problems
			}
			if prev, dup := channels[ch.Channel]; dup {
				errs = append(errs, fmt.Errorf("%s.channel: %q is also in %s", ckey, ch.Channel, prev))
			}
			channels[ch.Channel] = ckey
		}
	}
	if strings.ContainsAny(c.NickFormat, "\r\n") {
		errs = append(errs, errors.New("nick_format: holds a line break"))
	}
	return errors.Join(errs...)
}

// problems lists what is wrong with r alone, each error naming key (routes[i]) and the
// field: the chat name, each channel's ID (not a Status or gateway one, not twice),
// direction and the long-text policy. Whether a connector carries each network is the
// gateway's check (New, AddRoute).
func (r Route) problems(key string) []error {
	var errs []error
	name := strings.TrimPrefix(r.Chat, "#")
	if name == "" {
		errs = append(errs, fmt.Errorf("%s.chat: empty", key))
	} else if err := status.ValidateChatName(name); err != nil {
		errs = append(errs, fmt.Errorf("%s.chat: %w", key, err))
	}
	if r.LongText > LongTruncate {
		errs = append(errs, fmt.Errorf("%s.long_text: invalid", key))
	}
	seen := map[bridges.ChannelID]bool{}
	for j, ch := range r.Channels {
		ckey := fmt.Sprintf("%s.channels[%d]", key, j)
		if err := ch.Channel.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s.channel: %w", ckey, err))
			continue
		}
		if n := ch.Channel.Network(); n == StatusNetwork || n == GatewayNetwork {
			errs = append(errs, fmt.Errorf("%s.channel: %q: network %q is reserved (the Status side is the route's chat)", ckey, ch.Channel, ch.Channel.Network()))
		}
		if seen[ch.Channel] {
			errs = append(errs, fmt.Errorf("%s.channel: %q twice", ckey, ch.Channel))
		}
		seen[ch.Channel] = true
		if ch.Direction > DirOut {
			errs = append(errs, fmt.Errorf("%s.direction: invalid", ckey))
		}
	}
	return errs
}
