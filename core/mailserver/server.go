package mailserver

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/statusgate/statusgate/core/whisper"
)

// DefaultPassword is the mailserver password Status clients use (REACT constant).
const DefaultPassword = "status-offline-inbox"

// DefaultMaxResponseBytes is the default byte budget of one answer (ServerConfig).
const DefaultMaxResponseBytes = 8 << 20

// DefaultRequestPoW is the default PoW a request envelope must carry: status-go's
// default node minimum (params.WhisperMinimumPoW, v0.70.1), at which 2020–2021 clients
// seal their requests (shhext makeEnvelop with the node's MinPow). It costs a requester
// nothing; the rate limits are the abuse control.
const DefaultRequestPoW = 0.000002

// DefaultGapSyncInterval is ServerConfig.GapSyncInterval's default.
const DefaultGapSyncInterval = time.Minute

// DefaultSyncMargin is ServerConfig.SyncMargin's default: the longest TTL our pool
// admits.
const DefaultSyncMargin = 5 * time.Minute

// ServerConfig configures a Server. Zero values mean the documented defaults.
type ServerConfig struct {
	// Password derives the symmetric key requests are encrypted with. Default
	// "status-offline-inbox".
	Password string
	// NodeKey, when set, also opens requests encrypted to the node's public key.
	NodeKey *ecdsa.PrivateKey
	// MinPoW is the PoW a request envelope must carry. Default DefaultRequestPoW;
	// negative disables the check.
	MinPoW float64
	// DefaultLimit applies when a request gives none. Default 2000.
	DefaultLimit uint32
	// MaxLimit caps every request's limit, and bounds the binary form, which has none.
	// Default 10000.
	MaxLimit uint32
	// MaxResponseBytes bounds the envelope bytes of one answer (one page), whatever its
	// limit: a page ends, with a cursor, before the envelope that would take it past this
	// (a page holds at least one envelope). With MaxConcurrentRequests it bounds the
	// memory requests can pin. Default DefaultMaxResponseBytes (8 MiB).
	MaxResponseBytes int
	// MaxConcurrentRequests bounds the requests served at once; a request waits up to
	// BusyTimeout for its turn (its peer's other packets wait with it), then gets an
	// ERROR= completion. Defaults 4 and 10 s.
	MaxConcurrentRequests int
	BusyTimeout           time.Duration
	// MaxBatchBytes bounds one code-127 packet. Default 1 MiB (a peer's default max
	// message size).
	MaxBatchBytes int
	// Retention drops archived envelopes older than this. Default 30 days (Status fleet).
	Retention time.Duration
	// MaxArchiveBytes bounds the envelope bytes the archive keeps: past it the oldest
	// envelopes are dropped (checked with the hourly retention, and whenever a
	// sixteenth of it was written since the last check, so the archive exceeds it by
	// at most about 1/16). Any Whisper peer can make us archive envelopes, so without a
	// cap only the retention bounds the disk they take. Default DefaultMaxArchiveBytes
	// (1 GiB); negative: no cap.
	MaxArchiveBytes int64
	// RequestsPerSecond and RequestBurst limit each peer's history requests; excess
	// requests are answered with an ERROR= completion. Defaults 2/s and 20: status-go's Messenger
	// pages at limit 100, so 1,000 envelopes are 10 requests in a row.
	RequestsPerSecond float64
	RequestBurst      int
	// GlobalRequestsPerSecond and GlobalRequestBurst limit the requests of all peers
	// together: node IDs are free to mint, so the per-peer limit alone bounds nothing.
	// Defaults 20/s and 50.
	GlobalRequestsPerSecond float64
	GlobalRequestBurst      int
	// MaxTrackedPeers bounds the per-peer limiters kept; beyond it the least recently
	// used is dropped (LRU). Default 1024.
	MaxTrackedPeers int
	// ArchiveQueue bounds envelopes waiting to be written. Default 4096. Overflow policy:
	// block (the peer that delivered the envelope waits), so nothing accepted is lost.
	ArchiveQueue int
	// CheckpointInterval is how often Run makes the archive's commits durable when the
	// archive is a Checkpointer: on power loss the archive loses at most this much of
	// what it committed (plus the queue). Default DefaultCheckpointInterval.
	CheckpointInterval time.Duration
	// SyncTimeout bounds the wait for a peer mailserver's final sync response of a round.
	// Default 30 s (status-go's).
	SyncTimeout time.Duration
	// SyncWindow is how far back RunSync fetches when the archive is empty, or stopped
	// longer ago than this. Default 24 h.
	SyncWindow time.Duration
	// SyncMargin is how far before the archive's newest envelope RunSync starts, for
	// envelopes created earlier that reached the peer later. Default 5 min (the longest
	// TTL our pool admits).
	SyncMargin time.Duration
	// GapSyncInterval is the least time between two of RunSync's outage rounds: a node
	// whose link flaps syncs once per interval. Default DefaultGapSyncInterval (1 min).
	GapSyncInterval time.Duration
	// GapSynced, if set, is called after each of RunSync's gap rounds (the start's and
	// each outage's) has synced from every peer and its envelopes are written, on
	// RunSync's goroutine.
	GapSynced func(GapSync)
	// Logger receives request outcomes at Debug, errors at Warn. Default: discard.
	Logger *slog.Logger
	// Clock is the time for "upper = 0" and retention. Default time.Now.
	Clock func() time.Time
}

func (c ServerConfig) withDefaults() ServerConfig {
	if c.Password == "" {
		c.Password = DefaultPassword
	}
	if c.MinPoW == 0 {
		c.MinPoW = DefaultRequestPoW
	}
	if c.DefaultLimit == 0 {
		c.DefaultLimit = 2000
	}
	if c.MaxLimit == 0 {
		c.MaxLimit = 10000
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.MaxConcurrentRequests == 0 {
		c.MaxConcurrentRequests = 4
	}
	if c.BusyTimeout == 0 {
		c.BusyTimeout = 10 * time.Second
	}
	if c.GlobalRequestsPerSecond == 0 {
		c.GlobalRequestsPerSecond = 20
	}
	if c.GlobalRequestBurst == 0 {
		c.GlobalRequestBurst = 50
	}
	if c.MaxTrackedPeers == 0 {
		c.MaxTrackedPeers = 1024
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = int(whisper.DefaultMaxMessageSize)
	}
	if c.Retention == 0 {
		c.Retention = 30 * 24 * time.Hour
	}
	if c.MaxArchiveBytes == 0 {
		c.MaxArchiveBytes = DefaultMaxArchiveBytes
	}
	if c.RequestsPerSecond == 0 {
		c.RequestsPerSecond = 2
	}
	if c.RequestBurst == 0 {
		c.RequestBurst = 20
	}
	if c.ArchiveQueue == 0 {
		c.ArchiveQueue = 4096
	}
	if c.CheckpointInterval <= 0 {
		c.CheckpointInterval = DefaultCheckpointInterval
	}
	if c.SyncTimeout == 0 {
		c.SyncTimeout = 30 * time.Second
	}
	if c.SyncWindow == 0 {
		c.SyncWindow = 24 * time.Hour
	}
	if c.SyncMargin == 0 {
		c.SyncMargin = DefaultSyncMargin
	}
	if c.GapSyncInterval == 0 {
		c.GapSyncInterval = DefaultGapSyncInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c
}

// Server archives envelopes and answers history requests. It implements
// whisper.Archiver and whisper.RequestHandler: put it in whisper.Config, and run it with
// Run while the node runs.
type Server struct {
	cfg     ServerConfig
	archive Archive
	keys    Keys
	log     *slog.Logger
	queue   chan Record
	barrier chan chan struct{} // flushed's requests: closed once the queue before it is written
	done    chan struct{}
	limiter *requestLimiter
	serving chan struct{} // a slot per request being served

	syncMu  sync.Mutex
	syncing map[enode.ID]*syncRound // the sync in progress from each peer

	// committed is set by the writer after each flush that stored something, and cleared
	// by the checkpointer, which checkpoints only then (an idle archive costs no syncs).
	committed atomic.Bool

	gapKnown chan struct{} // closed once Run has set gapFrom
	gapFrom  time.Time     // where the archive stopped: RunSync fetches from here

	stats serverStats
}

// DefaultMaxArchiveBytes is ServerConfig.MaxArchiveBytes's default.
const DefaultMaxArchiveBytes = 1 << 30

// DefaultCheckpointInterval is ServerConfig.CheckpointInterval's default: a few
// milliseconds of archive at most lost on power loss.
const DefaultCheckpointInterval = 20 * time.Millisecond

type serverStats struct {
	mu                                                                      sync.Mutex
	archived, requests, served, failed, lost, syncRequests, syncUnsolicited uint64
}

// NewServer validates cfg and builds a server on archive. It derives the symmetric key
// (PBKDF2, a few milliseconds) but does no I/O.
func NewServer(archive Archive, cfg ServerConfig) (*Server, error) {
	if archive == nil {
		return nil, errors.New("mailserver: nil archive")
	}
	cfg = cfg.withDefaults()
	sym, err := whisper.SymKeyFromPassword(cfg.Password)
	if err != nil {
		return nil, fmt.Errorf("mailserver key: %w", err)
	}
	return &Server{cfg: cfg, archive: archive, keys: Keys{Sym: sym, Asym: cfg.NodeKey}, log: cfg.Logger,
		queue: make(chan Record, cfg.ArchiveQueue), barrier: make(chan chan struct{}), done: make(chan struct{}),
		limiter: newRequestLimiter(cfg.RequestsPerSecond, cfg.RequestBurst, cfg.GlobalRequestsPerSecond, cfg.GlobalRequestBurst, cfg.MaxTrackedPeers),
		serving: make(chan struct{}, cfg.MaxConcurrentRequests), syncing: map[enode.ID]*syncRound{}, gapKnown: make(chan struct{})}, nil
}

// Archive queues an accepted envelope for the archive (whisper.Archiver). It blocks
// while the queue is full.
func (s *Server) Archive(env *whisper.Envelope) {
	select {
	case s.queue <- RecordOf(env):
	case <-s.done:
		s.stats.mu.Lock()
		s.stats.lost++
		s.stats.mu.Unlock()
		s.log.Warn("mailserver stopped: envelope not archived", "envelope", env)
	}
}

// Run writes queued envelopes in batches and prunes the archive hourly (retention and
// size cap) and after every MaxArchiveBytes/16 written (size cap), until ctx ends; then
// it writes what is still queued and returns. Durability: an envelope is archived when
// the flush holding it commits; until then it is only in the queue (at most
// ArchiveQueue envelopes, one flush's time), which a crash loses, from the archive only.
// A Checkpointer archive's commits are made durable every CheckpointInterval by a
// goroutine Run owns, and once more before it returns: a power loss also loses what
// was committed within the last interval, from the archive only.
func (s *Server) Run(ctx context.Context) error {
	if cp, ok := s.archive.(Checkpointer); ok {
		cpCtx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { s.checkpointLoop(cpCtx, cp) })
		defer func() {
			stop()
			wg.Wait()
			if !s.committed.Load() {
				return
			}
			finalCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := cp.Checkpoint(finalCtx); err != nil {
				s.log.Error("mailserver archive checkpoint failed", "err", err)
			}
		}()
	}
	s.findGap(ctx)
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	s.prune(ctx)
	var written int64 // envelope bytes archived since the last size check
	// Group commit: each flush writes everything queued meanwhile, up to a queue's worth,
	// in one Put (one transaction). While a flush waits on the disk, the next batch
	// gathers, so the write rate follows the offered rate.
	batch := make([]Record, 0, s.cfg.ArchiveQueue)
	// flush writes batch; final is the shutdown drain's, after which a failure is a loss.
	flush := func(ctx context.Context, final bool) {
		if len(batch) == 0 {
			return
		}
		err := s.archive.Put(ctx, batch)
		for wait := 100 * time.Millisecond; err != nil && wait <= 2*time.Second && ctx.Err() == nil; wait *= 4 {
			s.log.Warn("mailserver archive write failed; retrying", "envelopes", len(batch), "in", wait, "err", err)
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
			err = s.archive.Put(ctx, batch)
		}
		if err != nil && !final && ctx.Err() != nil {
			return // shutting down: the batch is kept, and the drain writes it
		}
		if err != nil {
			// Lost to the archive only, never to the node's subscribers; counted and logged.
			s.log.Error("mailserver archive write failed", "envelopes", len(batch), "err", err)
			s.stats.mu.Lock()
			s.stats.lost += uint64(len(batch))
			s.stats.mu.Unlock()
		} else {
			s.committed.Store(true)
			s.stats.mu.Lock()
			s.stats.archived += uint64(len(batch))
			s.stats.mu.Unlock()
			for _, r := range batch {
				written += int64(len(r.Envelope))
			}
		}
		batch = batch[:0]
		if s.cfg.MaxArchiveBytes > 0 && written >= max(s.cfg.MaxArchiveBytes/16, 1) {
			written = 0
			s.pruneBytes(ctx)
		}
	}
	for {
		select {
		case r := <-s.queue:
			batch = s.take(append(batch, r))
			flush(ctx, false)
		case done := <-s.barrier:
			for batch = s.take(batch); len(batch) > 0; batch = s.take(batch) {
				flush(ctx, false)
			}
			close(done)
		case <-prune.C:
			s.prune(ctx)
			written = 0
		case <-ctx.Done():
			close(s.done)
			drainCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for batch = s.take(batch); len(batch) > 0; batch = s.take(batch) {
				flush(drainCtx, true)
			}
			return nil
		}
	}
}

// checkpointLoop calls cp.Checkpoint every CheckpointInterval in which the writer
// committed something, until ctx ends, beside the writer (so the copy into the database
// file runs on another core). A failure is logged when it starts and when it ends, not
// at every tick; the commits it did not make durable are retried at the next tick.
func (s *Server) checkpointLoop(ctx context.Context, cp Checkpointer) {
	t := time.NewTicker(s.cfg.CheckpointInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !s.committed.Swap(false) {
			continue
		}
		err := cp.Checkpoint(ctx)
		if err != nil {
			s.committed.Store(true) // not durable yet: again at the next tick
		}
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil && !failing:
			failing = true
			s.log.Warn("mailserver archive checkpoint failing: recent archive writes are not yet durable", "err", err)
		case err == nil && failing:
			failing = false
			s.log.Info("mailserver archive checkpoint recovered")
		}
	}
}

// flushed returns once every envelope queued before the call is written (or lost,
// counted), or when ctx ends or Run stops.
func (s *Server) flushed(ctx context.Context) {
	done := make(chan struct{})
	select {
	case s.barrier <- done:
	case <-s.done:
		return
	case <-ctx.Done():
		return
	}
	select {
	case <-done:
	case <-s.done:
	case <-ctx.Done():
	}
}

// take appends what is queued to batch, without waiting, up to the batch's capacity.
func (s *Server) take(batch []Record) []Record {
	for len(batch) < cap(batch) {
		select {
		case r := <-s.queue:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

func (s *Server) prune(ctx context.Context) {
	if s.cfg.MaxArchiveBytes > 0 {
		defer s.pruneBytes(ctx)
	}
	n, err := s.archive.Prune(ctx, s.cfg.Clock().Add(-s.cfg.Retention))
	if err != nil {
		s.log.Warn("mailserver prune failed", "err", err)
		return
	}
	if n > 0 {
		s.log.Info("mailserver pruned archive", "envelopes", n, "retention", s.cfg.Retention)
	}
}

// pruneBytes applies the archive's size cap, MaxArchiveBytes.
func (s *Server) pruneBytes(ctx context.Context) {
	n, err := s.archive.PruneBytes(ctx, s.cfg.MaxArchiveBytes)
	if err != nil {
		s.log.Warn("mailserver prune to size failed", "err", err)
		return
	}
	if n > 0 {
		s.log.Info("mailserver pruned archive to its size cap", "envelopes", n, "max_bytes", s.cfg.MaxArchiveBytes)
	}
}

// HandleRequest serves one history request (whisper.RequestHandler), on the requesting
// peer's goroutine. The rate limits are checked before any decryption, so refused
// requests cost a hash. Bad requests are answered with an ERROR= completion when they
// carry an ID, and never disconnect the peer; only a failed write to the peer is
// returned.
func (s *Server) HandleRequest(p *whisper.Peer, body []byte) error {
	s.stats.mu.Lock()
	s.stats.requests++
	s.stats.mu.Unlock()
	if err := s.limiter.allow(p.ID(), s.cfg.Clock()); err != nil {
		return s.fail(p, peekRequest(body), err)
	}
	req, err := DecodeRequest(body, s.keys, max(s.cfg.MinPoW, 0))
	if err != nil {
		return s.fail(p, req, err)
	}
	busy := time.NewTimer(s.cfg.BusyTimeout)
	select {
	case s.serving <- struct{}{}:
		busy.Stop()
	case <-busy.C:
		return s.fail(p, req, fmt.Errorf("%w: %d requests being served for %v", ErrBusy, cap(s.serving), s.cfg.BusyTimeout))
	}
	defer func() { <-s.serving }()
	if err := s.serve(p, req); err != nil {
		if errors.Is(err, errPeerWrite) {
			return err
		}
		return s.fail(p, req, err)
	}
	return nil
}

var errPeerWrite = errors.New("write to peer")

func (s *Server) fail(p *whisper.Peer, req *Request, cause error) error {
	s.stats.mu.Lock()
	s.stats.failed++
	s.stats.mu.Unlock()
	s.log.Debug("mailserver request refused", "peer", p.ID().TerminalString(), "err", cause)
	if req == nil {
		return nil // nothing to answer to
	}
	c := Completion{RequestID: req.ID, Error: cause.Error()}
	if err := p.SendRequestComplete(c.Encode()); err != nil {
		return fmt.Errorf("%w: %w", errPeerWrite, err)
	}
	return nil
}

func (s *Server) serve(p *whisper.Peer, req *Request) error {
	upper := req.Upper
	if upper == 0 {
		upper = uint32(s.cfg.Clock().Unix() + 60)
	}
	if req.Lower > upper {
		return fmt.Errorf("%w: lower %d > upper %d", ErrBadRequest, req.Lower, upper)
	}
	limit := req.Limit
	switch {
	case limit == 0 && req.Form == FormBinary:
		limit = s.cfg.MaxLimit // geth's form has no limit and no paging
	case limit == 0:
		limit = s.cfg.DefaultLimit
	case limit > s.cfg.MaxLimit:
		limit = s.cfg.MaxLimit
	}
	envs, next, err := s.archive.Query(context.Background(), Query{Lower: req.Lower, Upper: upper, Bloom: req.Bloom,
		Topics: req.Topics, Limit: int(limit), MaxBytes: s.cfg.MaxResponseBytes, Cursor: req.Cursor})
	if err != nil {
		return fmt.Errorf("query archive: %w", err)
	}
	if err := s.send(p, envs, req.Batch); err != nil {
		return fmt.Errorf("%w: %w", errPeerWrite, err)
	}
	c := Completion{RequestID: req.ID, Cursor: next}
	if len(envs) > 0 {
		// An envelope's hash is keccak256 of its RLP: no need to decode the stored bytes.
		c.LastEnvelope = crypto.Keccak256Hash(envs[len(envs)-1])
	}
	if err := p.SendRequestComplete(c.Encode()); err != nil {
		return fmt.Errorf("%w: %w", errPeerWrite, err)
	}
	s.stats.mu.Lock()
	s.stats.served += uint64(len(envs))
	s.stats.mu.Unlock()
	s.log.Debug("mailserver request served", "peer", p.ID().TerminalString(), "form", req.Form,
		"envelopes", len(envs), "more", len(next) > 0)
	return nil
}

// send delivers envs in code-127 packets of at most MaxBatchBytes (lists when batch),
// a batch of one as a single envelope, as status-go does (§4.4).
func (s *Server) send(p *whisper.Peer, envs [][]byte, batch bool) error {
	if !batch {
		return p.SendP2PRaw(envs, false)
	}
	for len(envs) > 0 {
		n, size := 0, 0
		for n < len(envs) && (n == 0 || size+len(envs[n]) < s.cfg.MaxBatchBytes-9) {
			size += len(envs[n])
			n++
		}
		if err := p.SendP2PRaw(envs[:n], n > 1); err != nil {
			return err
		}
		envs = envs[n:]
	}
	return nil
}

// ServerStats are a server's counters.
type ServerStats struct {
	Archived, Requests, Served, Failed, Lost uint64
	// SyncRequests are peer mailservers' sync requests (code 123); SyncUnsolicited the
	// sync responses (code 124) that came while no sync from that peer was running.
	SyncRequests, SyncUnsolicited uint64
}

// Stats returns the counters.
func (s *Server) Stats() ServerStats {
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	return ServerStats{Archived: s.stats.archived, Requests: s.stats.requests, Served: s.stats.served, Failed: s.stats.failed,
		Lost: s.stats.lost, SyncRequests: s.stats.syncRequests, SyncUnsolicited: s.stats.syncUnsolicited}
}
