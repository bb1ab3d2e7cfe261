package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
	"golang.org/x/time/rate"

	"github.com/statusgate/statusgate/bridges"
)

var (
	_ bridges.Connector = (*Connector)(nil)
	_ bridges.Editor    = (*Connector)(nil)
	_ bridges.Redactor  = (*Connector)(nil)
)

// maxTextLen is Slack's limit on a message's text (chat.postMessage truncates at
// 40,000 characters); counted here in bytes, which is stricter.
const maxTextLen = 40000

// Connector is the slack connector: one Slack app in one workspace, receiving through
// Socket Mode (app-level token) or the Events API over HTTP (signing secret) and
// posting through the Web API (bot token). Build
// it with New; the gateway calls Run once. All methods are safe for concurrent use.
type Connector struct {
	cfg      Config
	api      *slack.Client
	channels map[string]*rate.Limiter // Slack channel ID → its send limiter; fixed at New
	users    *userCache
	recent   *recentSet // Events API event_ids handled lately (events_http.go)

	// Injected time and retry delays (STYLE.md rule 14); tests shorten them.
	now           func() time.Time
	retryMin      time.Duration
	retryMax      time.Duration
	badCredsRetry time.Duration
	limits        httpLimits    // of the Events API endpoint
	rejected      atomic.Uint64 // Events API requests refused for their signature
	refusedLog    refusedLog

	running  atomic.Bool
	httpAddr atomic.Pointer[string]      // the Events API endpoint's bound address, once listening
	self     atomic.Pointer[identity]    // from auth.test; nil until the first success
	log      atomic.Pointer[slog.Logger] // the Host's, while Run runs

	mu        sync.Mutex
	notBefore map[string]time.Time // channel → end of its last 429 Retry-After
	uncertain map[string]bool      // Outbound.Key whose last post may have landed
}

// identity is who the tokens belong to, from auth.test.
type identity struct {
	team, user, bot string
}

// New validates cfg and returns a connector for it. It does no I/O and starts no
// goroutines; Run does.
func New(cfg Config) (*Connector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	c := &Connector{
		cfg: cfg,
		api: slack.New(cfg.BotToken,
			slack.OptionAPIURL(cfg.APIURL),
			slack.OptionAppLevelToken(cfg.AppToken),
			slack.OptionHTTPClient(&http.Client{Timeout: requestTimeout}),
		),
		channels:      make(map[string]*rate.Limiter, len(cfg.Channels)),
		users:         newUserCache(userCacheSize, userCacheTTL),
		recent:        newRecentSet(recentEvents),
		now:           time.Now,
		retryMin:      retryMin,
		retryMax:      retryMax,
		badCredsRetry: badCredsRetry,
		limits:        eventsLimits,
		notBefore:     make(map[string]time.Time),
		uncertain:     make(map[string]bool),
	}
	for _, ch := range cfg.Channels {
		c.channels[ch] = rate.NewLimiter(rate.Limit(cfg.RatePerChannel), cfg.Burst)
	}
	c.log.Store(slog.New(slog.DiscardHandler))
	return c, nil
}

// Name returns Config.Name.
func (c *Connector) Name() string { return c.cfg.Name }

// Capabilities: Slack shows threads (Replies) and a per-message username and icon
// (Puppets, with the chat:write.customize scope); edits have no time limit for a bot.
func (c *Connector) Capabilities() bridges.Capabilities {
	return bridges.Capabilities{MaxTextLen: maxTextLen, Replies: true, Puppets: true}
}

// Run checks the bot token (auth.test), then receives events until ctx ends: over
// Socket Mode (reconnecting with backoff), or with the http transport on the Events API
// endpoint (events_http.go). A rejected token is reported as StateBadCredentials and
// retried every few minutes. Run returns nil when ctx is cancelled, and an error only
// when the Events API endpoint cannot listen.
func (c *Connector) Run(ctx context.Context, h bridges.Host) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("slack: Run called twice")
	}
	defer c.running.Store(false)
	c.log.Store(h.Logger())
	h.ReportState(bridges.StateConnecting, nil)
	if c.cfg.Transport == TransportHTTP {
		return c.runHTTP(ctx, h)
	}
	return c.retryLoop(ctx, h, c.session)
}

// retryLoop runs session until ctx ends, again after every failure with backoff (reset
// after a session that connected), slowly when Slack rejected a token. It returns nil.
func (c *Connector) retryLoop(ctx context.Context, h bridges.Host, session func(context.Context, bridges.Host) (bool, error)) error {
	log := h.Logger()
	delay := c.retryMin
	for {
		connected, err := session(ctx, h)
		if ctx.Err() != nil {
			return nil
		}
		if connected {
			delay = c.retryMin
		}
		wait := delay
		if isAuthError(err) {
			h.ReportState(bridges.StateBadCredentials, err)
			log.Error("slack rejected the tokens", "err", err, "retry_in", c.badCredsRetry)
			wait = max(wait, c.badCredsRetry)
		} else {
			h.ReportState(bridges.StateTransientDisconnect, err)
			log.Warn("slack connection lost", "err", err, "retry_in", wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		delay = min(delay*2, c.retryMax)
		h.ReportState(bridges.StateConnecting, nil)
	}
}

// authTest checks the bot token and records who it belongs to.
func (c *Connector) authTest(ctx context.Context) (*identity, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	auth, err := c.api.AuthTestContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("auth.test: %w", err)
	}
	self := &identity{team: auth.TeamID, user: auth.UserID, bot: auth.BotID}
	c.self.Store(self)
	return self, nil
}

// session runs one auth.test and one Socket Mode client (which reconnects by itself
// after a dropped websocket) until ctx ends or the client gives up. connected reports
// whether Socket Mode said hello at least once.
func (c *Connector) session(ctx context.Context, h bridges.Host) (connected bool, err error) {
	auth, err := c.authTest(ctx)
	if err != nil {
		return false, err
	}

	sm := socketmode.New(c.api, socketmode.OptionLog(slogOutput{h.Logger()}))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel: the socket mode client stops on ctx
	wg.Go(func() { errc <- sm.RunContext(ctx) })

	for {
		select {
		case <-ctx.Done():
			return connected, ctx.Err()
		case err := <-errc:
			return connected, fmt.Errorf("socket mode: %w", err)
		case ev := <-sm.Events:
			switch ev.Type {
			case socketmode.EventTypeHello:
				if !connected {
					h.Logger().Info("slack connected", "team", auth.team, "bot", auth.bot)
				}
				connected = true
				h.ReportState(bridges.StateConnected, nil)
			case socketmode.EventTypeConnecting:
				if ce, ok := ev.Data.(*slack.ConnectingEvent); ok && ce.ConnectionCount > 0 {
					// slack-go reconnects by itself after a dropped websocket
					h.ReportState(bridges.StateTransientDisconnect, errors.New("socket mode connection lost"))
				}
			case socketmode.EventTypeConnectionError, socketmode.EventTypeIncomingError:
				h.ReportState(bridges.StateTransientDisconnect, errors.New("socket mode connection error"))
			case socketmode.EventTypeInvalidAuth:
				return connected, fmt.Errorf("socket mode: %w", errInvalidAuth)
			case socketmode.EventTypeEventsAPI:
				if ev.Request == nil {
					continue
				}
				if !c.handleEnvelope(ctx, h, ev) {
					return connected, ctx.Err() // not acked: Slack re-sends it
				}
				if err := sm.AckCtx(ctx, ev.Request.EnvelopeID, nil); err != nil {
					return connected, fmt.Errorf("ack envelope: %w", err)
				}
			}
		}
	}
}

// isAuthError reports whether Slack rejected a token.
func isAuthError(err error) bool {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		switch se.Err {
		case "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired":
			return true
		}
	}
	return errors.Is(err, errInvalidAuth)
}

// errInvalidAuth is Socket Mode's report of a rejected app token.
var errInvalidAuth = errors.New("invalid_auth")

// slogOutput adapts a slog.Logger to slack-go's logger (Output), at Debug.
type slogOutput struct{ log *slog.Logger }

func (o slogOutput) Output(_ int, s string) error {
	o.log.Debug(s, "component", "slack-go")
	return nil
}
