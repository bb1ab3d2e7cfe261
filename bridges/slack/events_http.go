package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/statusgate/statusgate/bridges"
)

// The Events API transport (Config.Transport "http"): Slack POSTs every event to the
// app's Request URL, which a TLS reverse proxy forwards to Config.Listen +
// Config.EventsPath.
//
// Every request is verified with slack-go's SecretsVerifier (X-Slack-Signature over
// "v0:<X-Slack-Request-Timestamp>:<body>" with the signing secret; a timestamp more
// than five minutes away is refused): anything that fails is answered 401 and never
// parsed further. A verified url_verification is answered with its challenge. A
// verified event_callback goes through the same path as a Socket Mode envelope
// (eventOf, deliverOnce), and the answer tells Slack whether to retry:
//
//	200  delivered, rejected for good, or of no interest (Slack will not retry)
//	500  Deliver failed transiently or timed out (Slack retries: after about 0 s, 1 min, 5 min)
//	503  auth.test has not succeeded yet, so events cannot be attributed (Slack retries)
//
// Slack also retries when the answer takes longer than 3 s, so the same event_id can
// arrive again while the first request is still delivering. The connector keeps the
// event_ids of the last recentEvents handled events (a bounded set, oldest evicted;
// Slack's retries span minutes): a retry of a handled event is answered 200 without a
// second Deliver, and a retry of an event in flight waits for that first request's
// outcome. The gateway dedupes by Origin as well, and a retry has the same Origin.

// Limits of the Events API endpoint.
const (
	maxEventBody    = 1 << 20 // bytes; Slack's events are far smaller
	recentEvents    = 10000   // event_ids remembered for deduplication
	deliverTimeout  = 10 * time.Second
	shutdownTimeout = 5 * time.Second
)

// httpLimits bound what one connection to the events endpoint may hold, so that a slow
// client (slowloris: an idle keep-alive, headers or a body dribbled a byte at a time)
// is cut off instead of holding a socket and a goroutine for ever.
type httpLimits struct {
	readHeader     time.Duration // request line and headers
	read           time.Duration // the whole request, body included
	write          time.Duration // from the end of the request headers to the end of the answer (Deliver included)
	idle           time.Duration // a keep-alive connection between requests
	maxHeaderBytes int
}

// eventsLimits: Slack sends small bodies and gives up on an answer after 3 s.
var eventsLimits = httpLimits{
	readHeader:     10 * time.Second,
	read:           30 * time.Second,
	write:          30 * time.Second,
	idle:           2 * time.Minute,
	maxHeaderBytes: 64 << 10,
}

// runHTTP serves the Events API endpoint until ctx ends, checking the bot token with
// auth.test (StateConnected once it succeeds, retried with backoff otherwise). It
// returns an error only when the endpoint cannot listen or stops serving.
func (c *Connector) runHTTP(ctx context.Context, h bridges.Host) error {
	log := h.Logger()
	ln, err := net.Listen("tcp", c.cfg.Listen)
	if err != nil {
		return fmt.Errorf("slack: listen for events on %s: %w", c.cfg.Listen, err)
	}
	addr := ln.Addr().String()
	c.httpAddr.Store(&addr)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	mux := http.NewServeMux()
	mux.Handle(c.cfg.EventsPath, c.eventsHandler(h))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: c.limits.readHeader,
		ReadTimeout:       c.limits.read,
		WriteTimeout:      c.limits.write,
		IdleTimeout:       c.limits.idle,
		MaxHeaderBytes:    c.limits.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		// Requests end with Run: a Deliver in flight returns and is answered 500.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	var wg sync.WaitGroup
	var serveErr error // written by the server goroutine, read after wg.Wait
	wg.Go(func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			serveErr = err
			cancel()
		}
	})
	log.Info("slack events endpoint listening", "addr", addr, "path", c.cfg.EventsPath)

	// Until auth.test has succeeded the endpoint answers 503 (events cannot be
	// attributed yet), so Slack re-sends them; a rejected token ends the session.
	var sessErr error
	if self, err := c.authTest(ctx); err != nil {
		sessErr = err
	} else {
		log.Info("slack connected", "team", self.team, "bot", self.bot, "transport", TransportHTTP)
		h.ReportState(bridges.StateConnected, nil)
		<-ctx.Done()
	}
	cancel()
	shutCtx, cancelShut := context.WithTimeout(context.Background(), shutdownTimeout)
	if err := srv.Shutdown(shutCtx); err != nil {
		_ = srv.Close()
	}
	cancelShut()
	wg.Wait()
	if serveErr != nil {
		return fmt.Errorf("slack: serve events on %s: %w", addr, serveErr)
	}
	return sessErr
}

// eventsHandler is the Events API endpoint, delivering to h. Each request runs on its
// own net/http goroutine; a panic fails that request alone (500, logged with its
// stack).
func (c *Connector) eventsHandler(h bridges.Host) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log := h.Logger()
		defer func() {
			if p := recover(); p != nil {
				log.Error("panic in slack events handler", "panic", p, "stack", string(debug.Stack()))
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		code, reply := c.serveEvent(r, h)
		if reply != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_, _ = w.Write(reply)
			return
		}
		http.Error(w, http.StatusText(code), code)
	})
}

// serveEvent handles one request and returns the status code to answer and, for a
// url_verification, the JSON body.
func (c *Connector) serveEvent(r *http.Request, h bridges.Host) (int, []byte) {
	log := h.Logger()
	if r.Method != http.MethodPost {
		return http.StatusMethodNotAllowed, nil
	}
	// The signature headers (present, timestamp within five minutes) are checked before
	// the body is read: a request without them costs no read and no HMAC.
	sv, err := slack.NewSecretsVerifier(r.Header, c.cfg.SigningSecret)
	if err != nil {
		c.refused(log, r, err)
		return http.StatusUnauthorized, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxEventBody+1))
	if err != nil {
		return http.StatusBadRequest, nil
	}
	if len(body) > maxEventBody {
		return http.StatusRequestEntityTooLarge, nil
	}
	_, _ = sv.Write(body)
	if err := sv.Ensure(); err != nil {
		c.refused(log, r, err)
		return http.StatusUnauthorized, nil
	}

	var outer struct {
		Type      string `json:"type"`
		EventID   string `json:"event_id"`
		Challenge string `json:"challenge"`
	}
	if err := json.Unmarshal(body, &outer); err != nil {
		log.Warn("slack events request is not JSON", "err", err)
		return http.StatusBadRequest, nil
	}
	api, err := slackevents.ParseEvent(json.RawMessage(body), slackevents.OptionNoVerifyToken())
	switch {
	case outer.Type == slackevents.URLVerification:
		challenge := outer.Challenge
		if v, ok := api.Data.(*slackevents.EventsAPIURLVerificationEvent); err == nil && ok {
			challenge = v.Challenge
		}
		reply, _ := json.Marshal(map[string]string{"challenge": challenge})
		return http.StatusOK, reply
	case outer.Type == slackevents.AppRateLimited:
		// Slack drops this app's events for a minute: they are lost to us.
		log.Warn("slack rate-limits this app's events; some are not sent", "type", outer.Type)
		return http.StatusOK, nil
	case outer.Type != slackevents.CallbackEvent:
		log.Debug("slack events request ignored", "type", outer.Type)
		return http.StatusOK, nil
	case err != nil:
		// An inner event type slack-go does not know: nothing to relay, and a retry
		// would not change that.
		log.Debug("slack event not parsed; ignored", "event_id", outer.EventID, "err", err)
		return http.StatusOK, nil
	}
	if c.self.Load() == nil {
		return http.StatusServiceUnavailable, nil // not connected yet: Slack retries
	}
	retry := r.Header.Get("X-Slack-Retry-Num")
	if retry != "" {
		log.Debug("slack event retried", "event_id", outer.EventID, "retry", retry, "reason", r.Header.Get("X-Slack-Retry-Reason"))
	}

	ctx, cancel := context.WithTimeout(r.Context(), deliverTimeout)
	defer cancel()
	e, dup := c.recent.begin(ctx, outer.EventID)
	if dup {
		log.Debug("slack event already delivered", "event_id", outer.EventID, "retry", retry)
		return http.StatusOK, nil
	}
	if e == nil { // ctx ended while the same event was in flight
		return http.StatusInternalServerError, nil
	}
	handled := false
	defer func() { c.recent.finish(outer.EventID, e, handled) }()

	ev, ok := c.eventOf(ctx, api)
	if !ok {
		handled = true
		return http.StatusOK, nil
	}
	if err := c.deliverOnce(ctx, h, ev); err != nil {
		log.Warn("deliver failed; answering 500 so that Slack retries", "chat", ev.Origin.Channel, "msg_id", ev.Origin.ID, "event_id", outer.EventID, "err", err)
		return http.StatusInternalServerError, nil
	}
	handled = true
	return http.StatusOK, nil
}

// recentSet is the bounded set of recently handled event_ids, with the events in
// flight. Safe for concurrent use.
type recentSet struct {
	mu    sync.Mutex
	max   int
	byID  map[string]*recentEntry
	order []string // handled event_ids, oldest first; at most max
}

type recentEntry struct {
	done    chan struct{} // closed by finish
	handled bool          // set before done is closed
}

func newRecentSet(max int) *recentSet {
	return &recentSet{max: max, byID: make(map[string]*recentEntry)}
}

// begin claims event id for the caller, who must then call finish. dup is true when
// id was handled already. When id is in flight elsewhere, begin waits for its outcome
// until ctx ends (then it returns nil, false): handled means dup, else the caller
// claims it. An empty id is never a duplicate.
func (s *recentSet) begin(ctx context.Context, id string) (e *recentEntry, dup bool) {
	for {
		s.mu.Lock()
		cur, ok := s.byID[id]
		if !ok || id == "" {
			e = &recentEntry{done: make(chan struct{})}
			if id != "" {
				s.byID[id] = e
			}
			s.mu.Unlock()
			return e, false
		}
		s.mu.Unlock()
		select {
		case <-cur.done:
			if cur.handled {
				return nil, true
			}
		case <-ctx.Done():
			return nil, false
		}
	}
}

// finish records the outcome of an event claimed with begin: a handled event is
// remembered (evicting the oldest beyond max), an unhandled one forgotten so that a
// retry delivers it.
func (s *recentSet) finish(id string, e *recentEntry, handled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e.handled = handled
	close(e.done)
	if id == "" {
		return
	}
	if !handled {
		delete(s.byID, id)
		return
	}
	s.order = append(s.order, id)
	if len(s.order) > s.max {
		delete(s.byID, s.order[0])
		s.order = s.order[1:]
	}
}

func (s *recentSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}

// refusedLogEvery bounds the log lines about refused (unsigned, badly signed or stale)
// requests: anyone who can reach the endpoint can send them, so each one is counted
// (RejectedRequests) but at most one line a minute is logged.
const refusedLogEvery = time.Minute

// refusedLog is the state of that bound. Its mutex is a leaf.
type refusedLog struct {
	mu     sync.Mutex
	last   time.Time // when a refusal was last logged; zero: never
	missed uint64    // refusals since, not logged
}

// refused counts a refused request and logs it, unless one was logged less than
// refusedLogEvery ago; the next line says how many were refused in between.
func (c *Connector) refused(log *slog.Logger, r *http.Request, err error) {
	total := c.rejected.Add(1)
	now := c.now()
	c.refusedLog.mu.Lock()
	if !c.refusedLog.last.IsZero() && now.Sub(c.refusedLog.last) < refusedLogEvery {
		c.refusedLog.missed++
		c.refusedLog.mu.Unlock()
		return
	}
	missed := c.refusedLog.missed
	c.refusedLog.last, c.refusedLog.missed = now, 0
	c.refusedLog.mu.Unlock()
	log.Warn("slack events request refused: bad, stale or missing signature (logged at most once a minute)",
		"remote", r.RemoteAddr, "err", err, "refused_since_last_line", missed, "refused_total", total)
}

// RejectedRequests returns how many requests the Events API endpoint refused for a
// bad, stale or missing signature since the connector was built. bridge run exports
// it as statusgate_rejected_requests_total{network=…}.
func (c *Connector) RejectedRequests() uint64 { return c.rejected.Load() }
