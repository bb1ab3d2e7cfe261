package mailserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/statusgate/statusgate/core/whisper"
)

// ClientConfig configures a Client. Zero values mean the documented defaults, which are
// those of Status clients (PROTOCOL.md §4.2, §4.6).
type ClientConfig struct {
	// Password derives the symmetric key requests are encrypted with. Default
	// "status-offline-inbox".
	Password string
	// NodeKey signs requests, as status-go signs them with the devp2p node key. Required.
	NodeKey *ecdsa.PrivateKey
	// PoW, WorkTime and TTL of request envelopes. Defaults 0.002, 5 s, 50 s.
	PoW      float64
	WorkTime time.Duration
	TTL      uint32
	// Form is how requests are encoded: FormTopics (default: status-go's payload with
	// topics, what every status-go server from 2020 on decodes), FormPayload (the
	// late-2019 payload, for servers older than status-go bc2d0184) or FormStruct
	// (status-go's MessagesRequest, no envelope, as its Messenger sends; bloom only).
	Form RequestForm
	// Limit is the page size asked for; it halves on each failed page down to MinLimit.
	// Defaults 1000 (status-go's servers refuse more) and 100.
	Limit, MinLimit uint32
	// Timeout waits for a page's completion; Backoff between retries; Retries per page.
	// Defaults 30 s, 3 s, 3.
	Timeout, Backoff time.Duration
	Retries          int
	// MaxRange is the widest time range of one request. Default 24 h.
	MaxRange time.Duration
	// Drift moves the lower bound back to catch envelopes in flight. Default 20 s.
	Drift time.Duration
	// Logger receives progress at Info. Default: discard.
	Logger *slog.Logger
}

func (c ClientConfig) withDefaults() ClientConfig {
	if c.Password == "" {
		c.Password = DefaultPassword
	}
	if c.PoW == 0 {
		c.PoW = 0.002
	}
	if c.WorkTime == 0 {
		c.WorkTime = 5 * time.Second
	}
	if c.TTL == 0 {
		c.TTL = 50
	}
	if c.Form == 0 {
		c.Form = FormTopics
	}
	if c.Limit == 0 {
		c.Limit = maxStructLimit
	}
	if c.MinLimit == 0 {
		c.MinLimit = 100
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.Backoff == 0 {
		c.Backoff = 3 * time.Second
	}
	if c.Retries == 0 {
		c.Retries = 3
	}
	if c.MaxRange == 0 {
		c.MaxRange = 24 * time.Hour
	}
	if c.Drift == 0 {
		c.Drift = 20 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Client requests history from mailservers. It implements whisper.CompletionHandler:
// put it in whisper.Config.Completions so that completions reach it.
type Client struct {
	cfg ClientConfig
	sym *whisper.SymKey
	log *slog.Logger

	mu      sync.Mutex
	pending map[[32]byte]chan *Completion
}

// NewClient validates cfg and builds a client. It does no I/O.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.NodeKey == nil {
		return nil, errors.New("mailserver client: no node key to sign requests")
	}
	switch cfg.Form {
	case 0, FormTopics, FormPayload, FormStruct:
	default:
		return nil, fmt.Errorf("mailserver client: request form %v: use RequestGeth for the binary form", cfg.Form)
	}
	cfg = cfg.withDefaults()
	sym, err := whisper.SymKeyFromPassword(cfg.Password)
	if err != nil {
		return nil, fmt.Errorf("mailserver client key: %w", err)
	}
	return &Client{cfg: cfg, sym: sym, log: cfg.Logger, pending: map[[32]byte]chan *Completion{}}, nil
}

// HandleRequestComplete routes a mailserver's completion to the request waiting for it
// (whisper.CompletionHandler); unknown or malformed ones are logged and ignored.
func (c *Client) HandleRequestComplete(p *whisper.Peer, payload []byte) {
	comp, err := DecodeCompletion(payload)
	if err != nil {
		c.log.Debug("mailserver completion ignored", "peer", p.ID().TerminalString(), "err", err)
		return
	}
	c.mu.Lock()
	ch := c.pending[comp.RequestID]
	delete(c.pending, comp.RequestID)
	c.mu.Unlock()
	if ch != nil {
		ch <- comp // buffered 1
	}
}

// History asks for the envelopes of some topics in a time range.
type History struct {
	Topics   []whisper.Topic
	From, To time.Time
	// Cursor resumes an interrupted request (Progress.Cursor of the last run).
	Cursor []byte
}

// Progress reports a history request as it goes.
type Progress struct {
	Peer      enode.ID
	Covered   time.Time // everything created before this has been fetched
	Pages     int
	Envelopes uint64 // delivered by the mailserver so far (they reach subscriptions as usual)
	Cursor    []byte // where an interrupted request would resume; nil when a range is done
	Done      bool
}

// Request fetches h from the mailserver peer p, page by page, following the server's
// cursors, and calls progress after each page. The envelopes reach the node's
// subscriptions through the normal filters (code 127 from a trusted peer; SendRequest
// marks p trusted). A failed page is retried after Backoff with half the limit, Retries
// times, before Request gives up; when p disconnects it gives up at once with an error
// wrapping ErrPeerGone. Either way the returned Progress.Cursor (also reported to
// progress after every page) resumes the range: pass it as History.Cursor, with the
// same range, once the mailserver is back. Cursors are the server's own (status-go's and
// ours are both the 36-byte archive key of the last envelope sent, kept across a
// server restart).
func (c *Client) Request(ctx context.Context, p *whisper.Peer, h History, progress func(Progress)) (Progress, error) {
	pr := Progress{Peer: p.ID(), Covered: h.From}
	if h.To.Before(h.From) {
		return pr, fmt.Errorf("%w: from %v is after to %v", ErrBadRequest, h.From, h.To)
	}
	q := query{topics: h.Topics, bloom: whisper.BloomOf(h.Topics...)}
	limit := c.cfg.Limit
	directBefore := p.Info().Direct
	cursor := h.Cursor
	for start := h.From; start.Before(h.To) || start.Equal(h.To); {
		end := start.Add(c.cfg.MaxRange)
		if end.After(h.To) {
			end = h.To
		}
		lower := start.Add(-c.cfg.Drift)
		for {
			q.lower, q.upper, q.cursor = uint32(max(lower.Unix(), 0)), uint32(end.Unix()), cursor
			comp, err := c.page(ctx, p, q, &limit)
			if err != nil {
				pr.Cursor = cursor
				return pr, err
			}
			pr.Pages++
			pr.Envelopes = p.Info().Direct - directBefore
			cursor = comp.Cursor
			if len(cursor) == 0 {
				break
			}
			pr.Cursor = cursor
			if progress != nil {
				progress(pr)
			}
		}
		pr.Covered, pr.Cursor = end, nil
		if progress != nil {
			progress(pr)
		}
		if !end.Before(h.To) {
			break
		}
		start = end
	}
	pr.Done = true
	c.log.Info("mailserver history fetched", "peer", p.ID().TerminalString(), "pages", pr.Pages, "envelopes", pr.Envelopes)
	return pr, nil
}

// query is one page's request.
type query struct {
	lower, upper uint32
	topics       []whisper.Topic
	bloom        whisper.Bloom
	cursor       []byte
}

// page sends one request and waits for its completion, retrying with a halved limit.
func (c *Client) page(ctx context.Context, p *whisper.Peer, q query, limit *uint32) (*Completion, error) {
	var lastErr error
	for attempt := 0; attempt <= c.cfg.Retries; attempt++ {
		if attempt > 0 {
			*limit = max(*limit/2, c.cfg.MinLimit)
			select {
			case <-time.After(c.cfg.Backoff):
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-p.Done():
				return nil, fmt.Errorf("request history from %s: %w", p.ID().TerminalString(), ErrPeerGone)
			}
		}
		comp, err := c.once(ctx, p, q, *limit)
		if err == nil {
			return comp, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, ErrPeerGone) {
			return nil, fmt.Errorf("request history from %s: %w", p.ID().TerminalString(), err)
		}
		lastErr = err
		c.log.Info("mailserver page failed", "peer", p.ID().TerminalString(), "attempt", attempt+1, "limit", *limit, "err", err)
	}
	return nil, fmt.Errorf("request history from %s: %w", p.ID().TerminalString(), lastErr)
}

// request builds the packet body of one page in the configured form and its ID; the
// struct form has Topics for a Waku mailserver.
func (c *Client) request(q query, limit uint32, waku bool) (body []byte, id [32]byte, err error) {
	if c.cfg.Form == FormStruct {
		if _, err := rand.Read(id[:]); err != nil {
			return nil, id, fmt.Errorf("request id: %w", err)
		}
		if waku {
			body, err = EncodeWakuMessagesRequest(id, q.lower, q.upper, min(limit, maxStructLimit), q.cursor, q.bloom, q.topics)
		} else {
			body, err = EncodeMessagesRequest(id, q.lower, q.upper, min(limit, maxStructLimit), q.cursor, q.bloom)
		}
		return body, id, err
	}
	var payload []byte
	if c.cfg.Form == FormPayload {
		payload, err = EncodePayload(q.lower, q.upper, q.bloom, limit, q.cursor, true)
	} else {
		payload, err = EncodePayloadTopics(q.lower, q.upper, q.bloom, q.topics, limit, q.cursor, true)
	}
	if err != nil {
		return nil, id, err
	}
	env, err := whisper.Wrap(&whisper.MessageParams{KeySym: c.sym, Src: c.cfg.NodeKey, Payload: payload,
		TTL: c.cfg.TTL, PoW: c.cfg.PoW, WorkTime: c.cfg.WorkTime})
	if err != nil {
		return nil, id, fmt.Errorf("build request: %w", err)
	}
	return env.Bytes(), env.Hash(), nil
}

func (c *Client) once(ctx context.Context, p *whisper.Peer, q query, limit uint32) (*Completion, error) {
	if err := ctx.Err(); err != nil {
		return nil, err // never send a request whose answer nobody will wait for
	}
	body, id, err := c.request(q, limit, strings.HasPrefix(p.Protocol(), "waku/"))
	if err != nil {
		return nil, err
	}
	ch := make(chan *Completion, 1)
	c.mu.Lock()
	c.pending[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()
	if err := p.SendRequest(body); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPeerGone, err)
	}
	timeout := time.NewTimer(c.cfg.Timeout)
	defer timeout.Stop()
	select {
	case comp := <-ch:
		if comp.Error != "" {
			return nil, fmt.Errorf("mailserver: %s", comp.Error)
		}
		return comp, nil
	case <-timeout.C:
		return nil, fmt.Errorf("no completion within %v", c.cfg.Timeout)
	case <-p.Done():
		return nil, ErrPeerGone
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// RequestGeth asks a go-ethereum v6 mailserver (whisper/mailserver) for a time range in
// its binary form (lower ‖ upper ‖ bloom). Such a server sends every match as its own
// code-127 packet with no limit, no cursor and no completion, so the request is taken as
// finished once quiet passes without a new envelope from p (or timeout overall). It
// returns how many envelopes p delivered meanwhile.
func (c *Client) RequestGeth(ctx context.Context, p *whisper.Peer, topics []whisper.Topic, from, to time.Time, quiet time.Duration) (uint64, error) {
	if to.Before(from) {
		return 0, fmt.Errorf("%w: from %v is after to %v", ErrBadRequest, from, to)
	}
	payload := make([]byte, 8, 8+whisper.BloomFilterSize)
	binary.BigEndian.PutUint32(payload[0:4], uint32(max(from.Add(-c.cfg.Drift).Unix(), 0)))
	binary.BigEndian.PutUint32(payload[4:8], uint32(to.Unix()))
	bloom := whisper.BloomOf(topics...)
	payload = append(payload, bloom[:]...)
	env, err := whisper.Wrap(&whisper.MessageParams{KeySym: c.sym, Src: c.cfg.NodeKey, Payload: payload,
		TTL: c.cfg.TTL, PoW: c.cfg.PoW, WorkTime: c.cfg.WorkTime})
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	before := p.Info().Direct
	if err := p.SendRequest(env.Bytes()); err != nil {
		return 0, err
	}
	deadline := time.After(c.cfg.Timeout)
	tick := time.NewTicker(quiet / 4)
	defer tick.Stop()
	last, lastChange := before, time.Now()
	for {
		select {
		case <-ctx.Done():
			return last - before, ctx.Err()
		case <-deadline:
			return last - before, nil
		case <-tick.C:
			if n := p.Info().Direct; n != last {
				last, lastChange = n, time.Now()
			} else if time.Since(lastChange) >= quiet {
				return last - before, nil
			}
		}
	}
}
