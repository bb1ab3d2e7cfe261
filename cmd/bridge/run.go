package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/statusgate/statusgate"
	"github.com/statusgate/statusgate/core/mailserver"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/store"
)

// runGateway is the composition root: the only place that names concrete service types.
// Services join here as the issues that build them land; today that is the store
// (SQLite under data_dir, or PostgreSQL), the Status node (core/node: devp2p plus Whisper
// shh/6) and its mailserver (core/mailserver), which archives into the store. They run
// until ctx ends. The node logs its enode URL at Info once it listens; the private key
// and the store's DSN are never logged.
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
	if err := runNodeAndMailserver(ctx, nd, ms); err != nil {
		return err
	}
	return ctx.Err()
}

// runNodeAndMailserver runs the node and, when ms is not nil, the mailserver, until ctx
// ends or either fails or stops; the first to stop stops the other, and both are waited
// for. The mailserver stops after the node, so that what the node accepted while
// stopping is still archived. It returns the first error (a service that stops by
// itself before ctx ends is an error).
func runNodeAndMailserver(ctx context.Context, nd *node.Node, ms *mailserver.Server) error {
	if ms == nil {
		if err := nd.Run(ctx); err != nil {
			return fmt.Errorf("run node: %w", err)
		}
		return nil
	}
	nodeCtx, stopNode := context.WithCancel(ctx)
	defer stopNode()
	msCtx, stopMailserver := context.WithCancel(context.WithoutCancel(ctx))
	defer stopMailserver()

	errs := make(chan error, 2) // one per service: neither send blocks
	go func() {
		err := nd.Run(nodeCtx)
		stopMailserver()
		errs <- stopped(ctx, "node", err)
	}()
	go func() {
		err := ms.Run(msCtx)
		stopNode()
		errs <- stopped(ctx, "mailserver", err)
	}()
	// Both are waited for; the first to stop gives the error (the other then only
	// reports that it was stopped).
	first, second := <-errs, <-errs
	if first != nil {
		return first
	}
	return second
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
