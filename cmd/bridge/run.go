package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/statusgate/statusgate"
	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/bridges/api"
	"github.com/statusgate/statusgate/bridges/irc"
	"github.com/statusgate/statusgate/bridges/matrix"
	"github.com/statusgate/statusgate/bridges/slack"
	"github.com/statusgate/statusgate/core/gateway"
	"github.com/statusgate/statusgate/core/mailserver"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/status"
	"github.com/statusgate/statusgate/identity"
	"github.com/statusgate/statusgate/puppet"
	"github.com/statusgate/statusgate/store"
)

// runGateway is the composition root: the only place that names concrete service types.
// It builds the store (SQLite under data_dir, or PostgreSQL), the Status node (core/node:
// devp2p plus Whisper shh/6) and its mailserver (core/mailserver, archiving into the
// store), and, when routes are configured, the gateway (core/gateway) with the puppet
// registry, the Status SDK and the enabled connectors, plus the admin HTTP server
// (/healthz, /readyz, /metrics). They run until ctx ends, then stop in reverse order
// of start (runServices). Secrets (node key, gateway secret, API token, the store's
// DSN) are never logged.
func runGateway(ctx context.Context, cfg *Config, logOut io.Writer) error {
	log := cfg.Log.logger(logOut)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	namer, err := cfg.Identity.namer()
	if err != nil {
		return err
	}
	key, err := node.LoadOrCreateKey(cfg.Node.KeyFile)
	if err != nil {
		return err
	}
	// Files the gateway needs are checked before anything starts: a missing secret is a
	// configuration error, not something to discover after joining the network.
	var secret *identity.Secret
	var apiToken string
	if len(cfg.Gateway.Routes) > 0 {
		if secret, err = loadSecret(cfg.Gateway.SecretFile); err != nil {
			return fmt.Errorf("gateway.secret_file: %w", err)
		}
		if cfg.Connectors.enabled(apiNetwork) {
			if apiToken, err = loadToken(cfg.Connectors.API.TokenFile); err != nil {
				return fmt.Errorf("connectors.api.token_file: %w", err)
			}
		}
	}
	st, err := store.Open(ctx, cfg.Store.storeConfig())
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Warn("store close failed", "err", err)
		}
	}()
	log.Info("store open", cfg.Store.logAttrs()...)

	nc := cfg.Node.nodeConfig(log.With("net", "status"))
	var ms *mailserver.Server
	if *cfg.Mailserver.Enabled {
		ms, err = mailserver.NewServer(st.Archive(), cfg.Mailserver.serverConfig(key, log.With("net", "mailserver")))
		if err != nil {
			return err
		}
		nc.Whisper.Archiver, nc.Whisper.Requests = ms, ms
	}
	// With mailservers among the trusted peers, the gateway catches up on each chat's
	// history from them at start; the client takes their completions (code 125).
	var history *mailserver.Client
	if len(cfg.Gateway.Routes) > 0 && len(cfg.Node.TrustedPeers) > 0 {
		if history, err = mailserver.NewClient(mailserver.ClientConfig{NodeKey: key, Logger: log.With("net", "mailserver")}); err != nil {
			return err
		}
		nc.Whisper.Completions = history
	}
	nd, err := node.New(nc, key)
	if err != nil {
		return err
	}
	log.Info("statusgate starting", "version", statusgate.Version, "data_dir", cfg.DataDir,
		"node_id", nd.ID().String(), "listen", cfg.Node.ListenAddr, "aliases", namer.HasAliases())
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
	if len(cfg.Gateway.Routes) == 0 {
		log.Warn("no gateway routes configured: running a Status node only")
	} else {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "statusgate", Name: "peers",
				Help: "Connected Whisper peers."}, func() float64 { return float64(len(nd.Peers())) }))
		gw, err := buildGateway(cfg, log, nd, identity.ChatKey(&key.PublicKey), history, st, secret, apiToken, namer, reg)
		if err != nil {
			return err
		}
		services = append(services, service{"gateway", func(ctx context.Context) error {
			select { // the Status side needs the node listening
			case <-nd.Ready():
			case <-ctx.Done():
				return nil
			}
			return gw.Run(ctx)
		}})
		if cfg.HTTP.Listen != "" {
			adm := &adminServer{addr: cfg.HTTP.Listen, gw: gw, peers: func() int { return len(nd.Peers()) }, reg: reg,
				log: log.With("svc", "http")}
			services = append(services, service{"http", adm.Run})
		}
	}
	if err := runServices(ctx, log, services); err != nil {
		return err
	}
	return ctx.Err()
}

// buildGateway builds the gateway of cfg's routes: the Status SDK on nd (with mailserver
// catch-up through history, when not nil, from the trusted peers; the sync cursors are
// kept per chat in st), the puppet registry and the enabled connectors. Messages signed
// by nodeChatKey, the node's own key, are never relayed.
func buildGateway(cfg *Config, log *slog.Logger, nd *node.Node, nodeChatKey string, history *mailserver.Client, st *store.Store,
	secret *identity.Secret, apiToken string, namer *identity.Namer, reg prometheus.Registerer) (*gateway.Gateway, error) {
	sc := status.Config{Namer: namer, Logger: log.With("net", "status")}
	var joined func(context.Context, *status.Chat)
	if history != nil {
		sc.History = status.HistoryConfig{Client: history, Store: st}
		joined = func(ctx context.Context, ch *status.Chat) { catchUp(ctx, log, nd, cfg.Node.TrustedPeers, ch) }
	}
	client, err := status.New(nd, sc)
	if err != nil {
		return nil, err
	}
	var conns []bridges.Connector
	if cfg.Connectors.enabled(apiNetwork) {
		var channels []string
		for _, r := range cfg.Gateway.Routes {
			for _, ch := range r.Channels {
				if id := bridges.ChannelID(ch.Channel); id.Network() == apiNetwork {
					channels = append(channels, id.Local())
				}
			}
		}
		c, err := api.New(api.Config{Name: apiNetwork, Listen: cfg.Connectors.API.Listen, Token: apiToken, Channels: channels})
		if err != nil {
			return nil, fmt.Errorf("connectors.api: %w", err)
		}
		conns = append(conns, c)
	}
	for i := range cfg.Connectors.IRC {
		c, err := irc.New(cfg.Connectors.IRC[i].ircConfig())
		if err != nil {
			return nil, fmt.Errorf("connectors.irc[%d]: %w", i, err)
		}
		conns = append(conns, c)
	}
	for i := range cfg.Connectors.Slack {
		c, err := slack.New(cfg.Connectors.Slack[i].slackConfig())
		if err != nil {
			return nil, fmt.Errorf("connectors.slack[%d]: %w", i, err)
		}
		conns = append(conns, c)
	}
	for i := range cfg.Connectors.Matrix {
		c, err := matrix.New(cfg.Connectors.Matrix[i])
		if err != nil {
			return nil, fmt.Errorf("connectors.matrix[%d]: %w", i, err)
		}
		conns = append(conns, c)
	}
	gc := cfg.Gateway.gatewayConfig()
	gc.Logger = log.With("svc", "gateway")
	return gateway.New(gc, gateway.Deps{Ledger: st, Status: client, Puppets: puppet.New(secret, st, nil),
		Connectors: conns, OwnKeys: []string{nodeChatKey}, Registerer: reg, Joined: joined})
}

// catchUp fetches ch's history from the first trusted peer (mailserver) that connects,
// once; the gateway deduplicates what it already relayed.
func catchUp(ctx context.Context, log *slog.Logger, nd *node.Node, peers []string, ch *status.Chat) {
	var ids []enode.ID
	for _, p := range peers {
		if n, err := enode.ParseV4(p); err == nil {
			ids = append(ids, n.ID())
		}
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, id := range ids {
			if p := nd.Whisper().Peer(id); p != nil {
				err := ch.SyncHistory(ctx, p, func(pr status.HistoryProgress) {
					log.Info("history", "chat", pr.Chat, "envelopes", pr.Envelopes, "covered", pr.Covered, "done", pr.Done)
				})
				if err != nil && ctx.Err() == nil {
					log.Warn("history catch-up failed", "chat", ch.Name(), "err", err)
				}
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
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
