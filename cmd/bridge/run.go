package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/statusgate/statusgate"
	"github.com/statusgate/statusgate/core/node"
)

// runGateway is the composition root: the only place that names concrete service types.
// Services join here as the issues that build them land; today that is the Status node
// (core/node: devp2p plus Whisper shh/6), which runs until ctx ends. The node logs its
// enode URL at Info once it listens; the private key is never logged.
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
	nd, err := node.New(cfg.Node.nodeConfig(log.With("net", "status")), key)
	if err != nil {
		return err
	}
	log.Info("statusgate starting", "version", statusgate.Version, "data_dir", cfg.DataDir,
		"node_id", nd.ID().String(), "listen", cfg.Node.ListenAddr, "aliases", namer.HasAliases())
	if err := nd.Run(ctx); err != nil {
		return fmt.Errorf("run node: %w", err)
	}
	return ctx.Err()
}
