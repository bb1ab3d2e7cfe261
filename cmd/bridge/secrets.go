package main

import (
	"fmt"
	"log/slog"

	"github.com/statusgate/statusgate/keyfile"
)

// exposedConfig returns a warning when the configuration file at path (none: the
// embedded example) can be read by its group or by others: it may hold tokens (Matrix
// as_token and hs_token, Slack tokens, IRC passwords, a PostgreSQL DSN). It is a
// warning, not a refusal: the key files, which bridge run refuses when exposed, hold
// the secrets that cannot be replaced, and an operator may share a token-free
// configuration on purpose.
func exposedConfig(path string) string {
	if path == "" {
		return ""
	}
	exposed, mode, err := keyfile.Exposed(path)
	if err != nil || !exposed {
		return ""
	}
	return fmt.Sprintf("mode %v is readable by group or others, and the configuration may hold tokens and passwords; chmod 600 it", mode)
}

// warnExposedConfig logs exposedConfig's warning, if any, at WARN.
func warnExposedConfig(log *slog.Logger, path string) {
	if w := exposedConfig(path); w != "" {
		log.Warn("configuration file "+w, "path", path)
	}
}
