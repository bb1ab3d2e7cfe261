package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/statusgate/statusgate"
)

// runGateway is the composition root: the only place that names concrete service types.
// Services join here as the issues that build them land; today the Whisper envelope layer
// (core/whisper) is a library with no long-running service of its own, so the gateway
// prepares its data directory, reports what it would run, and returns.
func runGateway(ctx context.Context, cfg *Config, logOut io.Writer) error {
	log := cfg.Log.logger(logOut)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	log.Info("statusgate starting", "version", statusgate.Version, "data_dir", cfg.DataDir)
	log.Warn("no services to run yet: the Whisper node (shh/6 over devp2p) is the next milestone; " +
		"this build provides the envelope layer only")
	return ctx.Err()
}
