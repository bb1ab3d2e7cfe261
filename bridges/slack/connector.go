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

	// Injected time (STYLE.md rule 14).
	now        func() time.Time
	limits     httpLimits    // of the Events API endpoint
	rejected   atomic.Uint64 // Events API requests refused for their signature
	refusedLog refusedLog

	running  atomic.Bool
	httpAddr atomic.Pointer[string]      // the Events API endpoint's bound address, once listening
	self     atomic.Pointer[identity]    // from auth.test; nil until the first success
	log      atomic.Pointer[slog.Logger] // the Host's, while Run runs

	mu        sync.Mutex
	notBefore map[string]time.Time // channel → end of its last 429 Retry-After
	uncertain map[string]bool      // Outbound.Key whose last post may have landed
	sent      *bridges.SentKeys    // the latest posted keys: a key that went out is not posted again
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
		channels:  make(map[string]*rate.Limiter, len(cfg.Channels)),
		users:     newUserCache(userCacheSize, userCacheTTL),
		recent:    newRecentSet(recentEvents),
		now:       time.Now,
		limits:    eventsLimits,
		notBefore: make(map[string]time.Time),
		uncertain: make(map[string]bool),
		sent:      bridges.NewSentKeys(maxUncertain),
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
	return bridges.Capabilities{MaxTextLen: maxTextLen, Replies: true}
}

// Run serves one session (bridges.Connector.Run): it checks the bot token
// (auth.test), then receives events over Socket Mode (slack-go's client reconnects a
// dropped websocket by itself, within the session) or, with the http transport, on
// the Events API endpoint (events_http.go), until ctx ends (nil) or the session fails,
// and returns why: an error wrapping bridges.ErrBadCredentials when Slack rejected a
// token, another error for anything else (the endpoint cannot listen, the socket gave
// up, an event the gateway could not take, left unacknowledged for Slack to re-send).
func (c *Connector) Run(ctx context.Context, h bridges.Host) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("slack: Run called while running")
	}
	defer c.running.Store(false)
	c.log.Store(h.Logger())
	h.ReportState(bridges.StateConnecting, nil)
	var err error
	if c.cfg.Transport == TransportHTTP {
		err = c.runHTTP(ctx, h)
	} else {
		err = c.session(ctx, h)
	}
	if ctx.Err() != nil {
		return nil
	}
	if isAuthError(err) {
		return fmt.Errorf("slack rejected a token: %w: %w", bridges.ErrBadCredentials, err)
	}
	return err
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
// after a dropped websocket) until ctx ends or the client gives up, and returns why.
func (c *Connector) session(ctx context.Context, h bridges.Host) error {
	auth, err := c.authTest(ctx)
	if err != nil {
		return err
	}
	connected := false

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
			return ctx.Err()
		case err := <-errc:
			return fmt.Errorf("socket mode: %w", err)
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
				return fmt.Errorf("socket mode: %w", errInvalidAuth)
			case socketmode.EventTypeEventsAPI:
				if ev.Request == nil {
					continue
				}
				if !c.handleEnvelope(ctx, h, ev) {
					// Not acked: Slack re-sends it, to the next session.
					return fmt.Errorf("envelope %s not taken by the gateway", ev.Request.EnvelopeID)
				}
				if err := sm.AckCtx(ctx, ev.Request.EnvelopeID, nil); err != nil {
					return fmt.Errorf("ack envelope: %w", err)
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
