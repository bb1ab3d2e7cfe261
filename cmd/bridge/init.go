package main

import (
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/statusgate/statusgate"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/identity"
)

const initUsage = `usage: bridge init [-out FILE | -config FILE] [-force]

Prepares a fresh gateway: writes the configuration (config.example.yaml, fully
commented) to -out, creates the data dir (mode 0700), the node key and the gateway
secret (both mode 0600). With -config, the paths come from that existing file and no
configuration is written. An existing configuration is overwritten only with -force; an
existing node key or gateway secret is never overwritten, even with -force: every
puppet's Status identity is derived from the secret.

flags:
`

// runInit is `bridge init`. It returns the exit code.
func runInit(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), initUsage)
		fs.PrintDefaults()
	}
	out := fs.String("out", "", `write the configuration to FILE (default "statusgate.yaml")`)
	cfgPath := fs.String("config", "", "use the paths of this existing configuration and write none")
	force := fs.Bool("force", false, "overwrite an existing configuration (never the gateway secret)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bridge init: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}
	if *out != "" && *cfgPath != "" {
		fmt.Fprintln(stderr, "bridge init: -out and -config are exclusive (-config writes no configuration)")
		return exitUsage
	}
	if *cfgPath == "" && *out == "" {
		*out = "statusgate.yaml"
	}
	// The paths come from the configuration init writes (the embedded example, parsed
	// before anything is written) or from the one given.
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "bridge init:", err)
		return exitConfig
	}
	if err := initGateway(cfg, *out, *force, stdout); err != nil {
		fmt.Fprintln(stderr, "bridge init:", err)
		return exitFail
	}
	return exitOK
}

// initGateway writes the example configuration to out (unless out is empty) and creates
// cfg's data dir, node key and gateway secret, reporting each on w. It checks before
// writing anything: an existing out is refused without force, and so is an existing
// secret (which, with force, is kept, never overwritten, and must load).
func initGateway(cfg *Config, out string, force bool, w io.Writer) error {
	secretPath := cfg.Gateway.SecretFile
	secretExists, err := exists(secretPath)
	if err != nil {
		return err
	}
	if !force {
		var found []string
		if out != "" {
			outExists, err := exists(out)
			if err != nil {
				return err
			}
			if outExists {
				found = append(found, "configuration "+out+" exists (-force overwrites it)")
			}
		}
		if secretExists {
			found = append(found, "gateway secret "+secretPath+" exists (never overwritten, even with -force)")
		}
		if len(found) > 0 {
			return fmt.Errorf("refusing to initialise: %s", strings.Join(found, "; "))
		}
	}
	if secretExists {
		// Kept, so it must be usable: check it before anything is written.
		if _, err := loadSecret(secretPath); err != nil {
			return err
		}
	}

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	fmt.Fprintf(w, "data dir       %s\n", cfg.DataDir)
	if out != "" {
		if err := writeConfigFile(out, force); err != nil {
			return err
		}
		fmt.Fprintf(w, "configuration  %s (written)\n", out)
	}

	keyExisted, err := exists(cfg.Node.KeyFile)
	if err != nil {
		return err
	}
	key, err := node.LoadOrCreateKey(cfg.Node.KeyFile)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "node key       %s (%s)\n", cfg.Node.KeyFile, createdOrKept(keyExisted))

	if secretExists {
		fmt.Fprintf(w, "gateway secret %s (kept: an existing secret is never overwritten, even with -force)\n", secretPath)
	} else {
		if err := createSecret(secretPath); err != nil {
			return err
		}
		fmt.Fprintf(w, "gateway secret %s (created, mode 0600: back it up and never share it; "+
			"every puppet's Status identity is derived from it)\n", secretPath)
	}
	fmt.Fprintf(w, "node ID        %s\n", enode.PubkeyToIDV4(&key.PublicKey))
	return nil
}

func createdOrKept(existed bool) string {
	if existed {
		return "kept"
	}
	return "created"
}

// exists reports whether path exists, failing on any error other than its absence.
func exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("stat %s: %w", path, err)
	}
}

// writeConfigFile writes the embedded config.example.yaml to path, mode 0600 when new
// (a configuration may hold a database password). Without force an existing file is
// never touched (O_EXCL).
func writeConfigFile(path string, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create configuration dir: %w", err)
		}
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return fmt.Errorf("create configuration: %w", err)
	}
	_, werr := f.Write(statusgate.ExampleConfig())
	if err := errors.Join(werr, f.Close()); err != nil {
		return fmt.Errorf("write configuration %s: %w", path, err)
	}
	return nil
}

// createSecret writes a fresh gateway secret to path, mode 0600. O_EXCL: an existing
// secret, even one created by a concurrent init, is never overwritten.
func createSecret(path string) error {
	sec, err := identity.GenerateSecret(rand.Reader)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create gateway secret dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create gateway secret: %w", err)
	}
	_, werr := f.WriteString(sec.Hex() + "\n")
	if err := errors.Join(werr, f.Close()); err != nil {
		os.Remove(path)
		return fmt.Errorf("write gateway secret %s: %w", path, err)
	}
	return nil
}

// loadSecret reads the gateway secret at path (hex, surrounding white space ignored). It
// refuses a file readable by group or others, and a missing one with a hint to run
// bridge init. Errors never quote the file's contents.
func loadSecret(path string) (*identity.Secret, error) {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("gateway secret %s: missing; run `bridge init` to create it "+
			"(or restore it from backup: a new secret changes every puppet's identity)", path)
	case err != nil:
		return nil, fmt.Errorf("stat gateway secret: %w", err)
	case !st.Mode().IsRegular():
		return nil, fmt.Errorf("gateway secret %s: not a regular file", path)
	case st.Mode().Perm()&0o077 != 0:
		return nil, fmt.Errorf("gateway secret %s: mode %v is readable by others; chmod 600 it", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read gateway secret: %w", err)
	}
	sec, err := identity.ParseSecret(strings.TrimSpace(string(b)))
	clear(b)
	if err != nil {
		return nil, fmt.Errorf("gateway secret %s: %w", path, err)
	}
	return sec, nil
}
