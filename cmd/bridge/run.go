package main

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/statusgate/statusgate"
	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/bridges/irc"
	"github.com/statusgate/statusgate/bridges/matrix"
	"github.com/statusgate/statusgate/bridges/slack"
	"github.com/statusgate/statusgate/core/gateway"
	"github.com/statusgate/statusgate/core/mailserver"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/core/status"
	"github.com/statusgate/statusgate/identity"
	"github.com/statusgate/statusgate/puppet"
	"github.com/statusgate/statusgate/store"
)

// connectorSection is one configured connector: its key in the file, its network name,
// the check of its section, its keys read under a former name, and its constructor.
type connectorSection struct {
	key        string // "connectors.irc[0]"
	network    string
	validate   func() error
	deprecated func() []string // "<pkg>.<key>: what to do", nil when none
	build      func() (bridges.Connector, error)
}

// connectorConfig is what a connector package's Config gives the composition root.
type connectorConfig interface {
	Network() string // the network name after defaults
	Validate() error // nil, or "invalid <pkg> config: <pkg>.<key>: …"
}

// sectionsOf lists the connectors of one list section, built by newConnector.
func sectionsOf[C connectorConfig, T bridges.Connector](key string, cfgs []C, newConnector func(C) (T, error)) []connectorSection {
	out := make([]connectorSection, len(cfgs))
	for i, c := range cfgs {
		out[i] = connectorSection{key: fmt.Sprintf("%s[%d]", key, i), network: c.Network(), validate: c.Validate,
			build: func() (bridges.Connector, error) { return newConnector(c) }}
		if d, ok := any(c).(interface{ Deprecated() []string }); ok {
			out[i].deprecated = d.Deprecated
		}
	}
	return out
}

// connectorSections lists every configured connector, in the order they are built.
// Adding a connector is its package, its field in ConnectorsConfig, and one line here.
func (c *Config) connectorSections() []connectorSection {
	return slices.Concat(
		c.Connectors.API.sections(len(c.Gateway.Routes) > 0),
		sectionsOf("connectors.irc", c.Connectors.IRC, irc.New),
		sectionsOf("connectors.slack", c.Connectors.Slack, slack.New),
		sectionsOf("connectors.matrix", c.Connectors.Matrix, matrix.New),
	)
}

// runGateway is the composition root: the only place that names concrete service types.
// It reads the key files, opens the store (SQLite under data_dir, or PostgreSQL), builds
// the services (assemble) and runs them until ctx ends, then stops them in reverse order
// of start (runServices). Secrets (node key, gateway secret, API token, the store's DSN)
// are never logged.
func runGateway(ctx context.Context, cfg *Config, logOut io.Writer) error {
	log := cfg.Log.logger(logOut)
	applyMemoryLimit(cfg.Runtime, log, os.Getenv)
	for _, d := range cfg.deprecations() {
		key, what, _ := strings.Cut(d, ": ")
		log.Warn("deprecated configuration key", "key", key, "do", what)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	files, err := loadStartFiles(cfg)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.Store)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Warn("store close failed", "err", err)
		}
	}()
	log.Info("store open", "store", cfg.Store)
	services, err := assemble(cfg, log, st, files)
	if err != nil {
		return err
	}
	if err := runServices(ctx, log, services); err != nil {
		return err
	}
	return ctx.Err()
}

// startFiles is what bridge run reads from files before it builds anything.
type startFiles struct {
	namer  *identity.Namer
	key    *ecdsa.PrivateKey // the node key
	secret *identity.Secret  // the gateway secret; nil without routes
	// adminToken is the bearer token of the admin server's route table; "" without
	// routes or without http.listen.
	adminToken string
}

// loadStartFiles reads the alias word lists, the node key (created when missing), and, when the gateway runs, the gateway secret and the API token
// (into cfg.Connectors.API.Token). A missing secret is a configuration error, found
// before anything joins the network.
func loadStartFiles(cfg *Config) (startFiles, error) {
	var f startFiles
	var err error
	if f.namer, err = cfg.Identity.namer(); err != nil {
		return f, err
	}
	if f.key, err = node.LoadOrCreateKey(cfg.Node.KeyFile); err != nil {
		return f, fmt.Errorf("node.key_file: %w", err)
	}
	if len(cfg.Gateway.Routes) > 0 {
		if f.secret, err = loadSecret(cfg.Gateway.SecretFile); err != nil {
			return f, fmt.Errorf("gateway.secret_file: %w", err)
		}
		if *cfg.Connectors.API.Enabled {
			if cfg.Connectors.API.Token, err = loadToken(cfg.Connectors.API.TokenFile); err != nil {
				return f, fmt.Errorf("connectors.api.token_file: %w", err)
			}
		}
		if cfg.HTTP.Listen != "" {
			if f.adminToken, err = loadToken(cfg.HTTP.TokenFile); err != nil {
				return f, fmt.Errorf("http.token_file: %w", err)
			}
		}
	}
	return f, nil
}

// assemble builds, without I/O, every service of cfg in start order: the Status node
// (core/node: devp2p with Whisper shh/6 and Waku) and its mailserver (core/mailserver, archiving
// into st), and, when routes are configured, the gateway (core/gateway) with the puppet
// registry, the Status SDK and the connectors, plus the admin HTTP server (/healthz,
// /readyz, /metrics). bridge check-config runs it too, so that it reports whatever a
// constructor would refuse at start.
func assemble(cfg *Config, log *slog.Logger, st *store.Store, f startFiles) ([]service, error) {
	key := f.key
	nc := cfg.Node.nodeConfig(log.With("net", "status"))
	nc.PeerCache = st
	var ms *mailserver.Server
	var err error
	if *cfg.Mailserver.Enabled {
		ms, err = mailserver.NewServer(st.Archive(), cfg.Mailserver.serverConfig(key, log.With("net", "mailserver")))
		if err != nil {
			return nil, fmt.Errorf("mailserver: %w", err)
		}
		nc.Whisper.Archiver, nc.Whisper.Requests, nc.Whisper.Syncs = ms, ms, ms
		// Peer mailservers to sync from are dialled as trusted peers, so that their
		// sync responses (code 124) count.
		nc.TrustedPeers = append(append([]string(nil), nc.TrustedPeers...), cfg.Mailserver.SyncPeers...)
		if nc.Discovery.Register == nil { // a mailserver is findable as one
			nc.Discovery.Register = []string{node.TopicWhisper, node.TopicMailserver}
		}
	}
	// With mailservers among the trusted peers, the gateway catches up on each chat's
	// history from them at start; the client takes their completions (code 125).
	var history *mailserver.Client
	if len(cfg.Gateway.Routes) > 0 && (len(cfg.Node.TrustedPeers) > 0 || nc.Discovery.Searches(node.TopicMailserver)) {
		if history, err = mailserver.NewClient(mailserver.ClientConfig{NodeKey: key, Form: cfg.Node.requestForm(),
			Logger: log.With("net", "mailserver")}); err != nil {
			return nil, fmt.Errorf("mailserver client: %w", err)
		}
		nc.Whisper.Completions = history
	}
	nd, err := node.New(nc, key)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	log.Info("statusgate starting", "version", statusgate.Version, "data_dir", cfg.DataDir,
		"node_id", nd.ID().String(), "listen", cfg.Node.ListenAddr, "alias_words", aliasSource(cfg.Identity.AliasWords))
	if ms != nil {
		log.Info("mailserver on", "min_pow", *cfg.Mailserver.MinPoW, "retention_days", cfg.Mailserver.RetentionDays,
			"max_limit", cfg.Mailserver.MaxLimit)
	} else {
		log.Info("mailserver off")
	}

	// Services in start order; they stop in reverse. The mailserver stops after the node,
	// so that what the node accepted while stopping is still archived; the gateway stops
	// before the node, so that its last deliveries still reach peers.
	var services []service
	if ms != nil {
		services = append(services, service{"mailserver", ms.Run})
	}
	services = append(services, service{"node", nd.Run})
	if ms != nil && len(cfg.Mailserver.SyncPeers) > 0 {
		ids := make([]enode.ID, 0, len(cfg.Mailserver.SyncPeers))
		for _, u := range cfg.Mailserver.SyncPeers {
			n, err := enode.ParseV4(u)
			if err != nil {
				return nil, fmt.Errorf("mailserver.sync_peers: %w", err)
			}
			ids = append(ids, n.ID())
		}
		// Fills the gap left by our downtime once each peer is connected, then the gap of
		// each outage (no peer, or the host asleep) when peers are back.
		services = append(services, service{"mailserver-sync", func(ctx context.Context) error {
			return ms.RunSync(ctx, nd, ids)
		}})
	}
	if len(cfg.Gateway.Routes) == 0 {
		log.Warn("no gateway routes configured: running a Status node only")
		return services, nil
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "statusgate", Name: "peers",
			Help: "Connected peers (Whisper and Waku)."}, func() float64 { return float64(len(nd.Peers())) }),
		discoveryCollector{nd}, protocolCollector{nd})
	gw, err := buildGateway(cfg, log, nd, identity.ChatKey(&key.PublicKey), history, st, f, reg)
	if err != nil {
		return nil, err
	}
	services = append(services, service{"gateway", func(ctx context.Context) error {
		select { // the Status side needs the node listening
		case <-nd.Ready():
		case <-ctx.Done():
			return nil
		}
		return gw.Run(ctx)
	}})
	if lr := newLedgerRetention(cfg, st, log.With("svc", "retention")); lr.enabled() {
		services = append(services, service{"retention", lr.Run})
	}
	if cfg.HTTP.Listen != "" {
		adm := &adminServer{addr: cfg.HTTP.Listen, gw: gw, peers: func() int { return len(nd.Peers()) }, reg: reg, nd: nd,
			token: f.adminToken, log: log.With("svc", "http")}
		services = append(services, service{"http", adm.Run})
	}
	return services, nil
}

// buildGateway builds the gateway of cfg's routes: the Status SDK on nd (with mailserver
// catch-up through history, when not nil, from the trusted peers; the sync cursors are
// kept per chat in st), the puppet registry and the connectors. Messages signed by
// nodeChatKey, the node's own key, are never relayed.
func buildGateway(cfg *Config, log *slog.Logger, nd *node.Node, nodeChatKey string, history *mailserver.Client, st *store.Store,
	f startFiles, reg prometheus.Registerer) (*gateway.Gateway, error) {
	// Puppets' secure transports (their bundles, for the wrapped send format) live in
	// the store, one per puppet, made on first use.
	ratchets := status.NewRatchetPool(st, ratchet.Config{Logger: log.With("net", "ratchet")})
	sc := status.Config{Namer: f.namer, Logger: log.With("net", "status"), SendFormat: cfg.Gateway.SendFormat,
		Ratchets: ratchets.Get}
	if history != nil {
		// Each chat catches up from the first mailserver to answer, trusted or found by
		// discovery (core/status); the gateway deduplicates what it relayed already.
		sc.History = cfg.Node.catchUp(history, st, nd)
	}
	client, err := status.New(nd, sc)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	if err := reg.Register(ratchetCollector{pool: ratchets, client: client}); err != nil {
		return nil, fmt.Errorf("ratchet metrics: %w", err)
	}
	var conns []bridges.Connector
	for _, s := range cfg.connectorSections() {
		c, err := s.build()
		if err != nil {
			return nil, sectionError(s.key, err)
		}
		conns = append(conns, c)
	}
	if err := registerRejectCounters(reg, conns); err != nil {
		return nil, err
	}
	gc := cfg.Gateway.gatewayConfig()
	if gc.RateLimit.Exempt == nil && cfg.Connectors.API.Enabled != nil && *cfg.Connectors.API.Enabled {
		// The api limits its callers itself (429); exempt it under whatever name it has.
		gc.RateLimit.Exempt = []string{cfg.Connectors.API.Network()}
	}
	gc.Logger = log.With("svc", "gateway")
	return gateway.New(gc, gateway.Deps{Ledger: st, Status: gateway.StatusOver(client), Puppets: puppet.New(f.secret, st, nil),
		Connectors: conns, OwnKeys: []string{nodeChatKey}, Registerer: reg, Routes: st})
}

// service is one long-running part of the process.
type service struct {
	name string
	run  func(ctx context.Context) error
}

// runServices runs services until ctx ends or one of them fails or stops by itself,
// then stops them in reverse order of start, each after the later ones have returned.
// It returns the first failure (nil when ctx ended and all stopped cleanly).
func runServices(ctx context.Context, log *slog.Logger, services []service) error {
	type result struct {
		i   int
		err error
	}
	results := make(chan result, len(services))
	cancels := make([]context.CancelFunc, len(services))
	running := make([]bool, len(services))
	for i, s := range services {
		sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		cancels[i], running[i] = cancel, true
		go func() { results <- result{i, s.run(sctx)} }()
	}
	var first error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "cause", context.Cause(ctx))
	case r := <-results:
		running[r.i] = false
		cancels[r.i]()
		first = stopped(ctx, services[r.i].name, r.err)
		log.Error("service stopped; shutting down", "service", services[r.i].name, "err", first)
	}
	for i := len(services) - 1; i >= 0; i-- {
		if !running[i] {
			continue
		}
		cancels[i]()
		for running[i] {
			r := <-results
			running[r.i] = false
			cancels[r.i]()
			if r.err != nil && first == nil {
				first = fmt.Errorf("run %s: %w", services[r.i].name, r.err)
			}
		}
	}
	return first
}

// stopped turns a service's Run result into an error: nil when ctx ended (the service
// was asked to stop), and an error when it failed or stopped by itself.
func stopped(ctx context.Context, name string, err error) error {
	if err != nil {
		return fmt.Errorf("run %s: %w", name, err)
	}
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("run %s: stopped unexpectedly", name)
}
