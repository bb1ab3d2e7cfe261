package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/statusgate/statusgate"
	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/identity"
	"github.com/statusgate/statusgate/keyfile"
)

const initUsage = `usage: bridge init [-out FILE | -config FILE] [-force]
       bridge init -keys [-config FILE]

Prepares a fresh gateway: writes the configuration (config.example.yaml, fully
commented) to -out, creates the data dir (mode 0700), the node key, the gateway secret
and the API token (all mode 0600). With -config, the paths come from that existing file
and no configuration is written. An existing configuration is overwritten only with
-force; an existing node key, gateway secret or API token is never overwritten, even with
-force: every puppet's Status identity is derived from the secret.

With -keys, only the missing key files of the configuration (-config, default the
embedded one) are created, and nothing else is written; with all of them present it does
nothing. ` + "`make run`" + ` uses it on a fresh clone.

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
	keysOnly := fs.Bool("keys", false, "create only the missing key files of the configuration; write no configuration")
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
	if *keysOnly && (*out != "" || *force) {
		fmt.Fprintln(stderr, "bridge init: -keys takes neither -out nor -force (it writes no configuration and overwrites nothing)")
		return exitUsage
	}
	if *out != "" && *cfgPath != "" {
		fmt.Fprintln(stderr, "bridge init: -out and -config are exclusive (-config writes no configuration)")
		return exitUsage
	}
	if *cfgPath == "" && *out == "" && !*keysOnly {
		*out = "statusgate.yaml"
	}
	// The paths come from the configuration init writes (the embedded example, parsed
	// before anything is written) or from the one given.
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "bridge init:", err)
		return exitConfig
	}
	if *keysOnly {
		if err := initKeys(cfg, stdout); err != nil {
			fmt.Fprintln(stderr, "bridge init:", err)
			return exitFail
		}
		return exitOK
	}
	if err := initGateway(cfg, *out, *force, stdout); err != nil {
		fmt.Fprintln(stderr, "bridge init:", err)
		return exitFail
	}
	return exitOK
}

// initGateway writes the example configuration to out (unless out is empty) and creates
// cfg's data dir, node key, gateway secret and API token, reporting each on w. It checks
// before writing anything: an existing out is refused without force, and so is an
// existing secret (which, with force, is kept, never overwritten, and must load). An
// existing node key or API token is kept (and the token must load).
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
	tokenPath := cfg.Connectors.API.TokenFile
	tokenExists, err := exists(tokenPath)
	if err != nil {
		return err
	}
	if tokenExists {
		if _, err := loadToken(tokenPath); err != nil {
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
	if tokenExists {
		fmt.Fprintf(w, "api token      %s (kept)\n", tokenPath)
	} else {
		if err := createToken(tokenPath); err != nil {
			return err
		}
		fmt.Fprintf(w, "api token      %s (created, mode 0600: API clients authenticate with it; never share it)\n", tokenPath)
	}
	fmt.Fprintf(w, "node ID        %s\n", enode.PubkeyToIDV4(&key.PublicKey))
	return nil
}

// initKeys is `bridge init -keys`: it creates whichever of cfg's node key, gateway secret
// and API token is missing, reporting each it creates on w, and touches nothing else. An
// existing file is neither read nor changed (`bridge run` and `bridge check-config`
// check them); one created meanwhile by a concurrent init counts as existing.
func initKeys(cfg *Config, w io.Writer) error {
	for _, k := range []struct {
		label, path string
		create      func(string) error
	}{
		{"node key      ", cfg.Node.KeyFile, func(p string) error { _, err := node.LoadOrCreateKey(p); return err }},
		{"gateway secret", cfg.Gateway.SecretFile, createSecret},
		{"api token     ", cfg.Connectors.API.TokenFile, createToken},
		{"admin token   ", cfg.HTTP.TokenFile, createToken},
	} {
		ok, err := exists(k.path)
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		if err := k.create(k.path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				continue
			}
			return err
		}
		fmt.Fprintf(w, "%s %s (created, mode 0600)\n", k.label, k.path)
	}
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

// writeConfigFile writes the embedded config.example.yaml to path, mode 0600 (a
// configuration may hold a database password and tokens), fsynced. Without force an
// existing file is never touched; with force it is replaced, and ends 0600 whatever
// its mode was.
func writeConfigFile(path string, force bool) error {
	write := keyfile.Create
	if force {
		write = keyfile.Replace
	}
	if err := write(path, statusgate.ExampleConfig()); err != nil {
		return fmt.Errorf("configuration: %w", err)
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
	return writeKeyFile(path, "gateway secret", sec.Hex())
}

// tokenLen is the length of an API token: 32 random bytes in hex.
const tokenLen = 64

// createToken writes a fresh API token, 32 random bytes in hex, to path, mode 0600,
// never overwriting an existing file (O_EXCL).
func createToken(path string) error {
	b := make([]byte, tokenLen/2)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("generate api token: %w", err)
	}
	tok := hex.EncodeToString(b)
	clear(b)
	return writeKeyFile(path, "api token", tok)
}

// writeKeyFile writes text and a newline to the new secret file path with
// keyfile.Create (mode 0600, fsynced with its directory, never overwriting: an existing
// file, even one created by a concurrent init, makes the error wrap fs.ErrExist). what
// names the file in errors, which never quote text.
func writeKeyFile(path, what, text string) error {
	if err := keyfile.Create(path, []byte(text+"\n")); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// loadToken reads the API token at path, surrounding white space ignored. Like
// loadSecret it refuses a file readable by group or others, and a missing one with a hint
// to run bridge init; the token must be 64 hex characters. Errors never quote the file's
// contents.
func loadToken(path string) (string, error) {
	b, err := readKeyFile(path, "api token")
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	clear(b)
	if len(tok) != tokenLen || !isHex(tok) {
		return "", fmt.Errorf("api token %s: not %d hex characters", path, tokenLen)
	}
	return tok, nil
}

// missingKeyFileError is a secret file that does not exist; it wraps fs.ErrNotExist.
type missingKeyFileError struct{ what, path string }

func (e missingKeyFileError) Error() string {
	return fmt.Sprintf("%s %s: missing; run `bridge init -keys` (with your -config) to create it", e.what, e.path)
}

func (e missingKeyFileError) Unwrap() error { return fs.ErrNotExist }

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// readKeyFile reads the secret file path, named what in errors. It refuses a missing file
// (with a hint to run bridge init -keys), one that is not regular, and one readable by
// group or others.
func readKeyFile(path, what string) ([]byte, error) {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, missingKeyFileError{what: what, path: path}
	case err != nil:
		return nil, fmt.Errorf("stat %s: %w", what, err)
	case !st.Mode().IsRegular():
		return nil, fmt.Errorf("%s %s: not a regular file", what, path)
	case st.Mode().Perm()&0o077 != 0:
		return nil, fmt.Errorf("%s %s: mode %v is readable by others; chmod 600 it", what, path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	return b, nil
}

// loadSecret reads the gateway secret at path (hex, surrounding white space ignored). It
// refuses a file readable by group or others, and a missing one with a hint to run
// bridge init. Errors never quote the file's contents.
func loadSecret(path string) (*identity.Secret, error) {
	b, err := readKeyFile(path, "gateway secret")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (or restore it from backup: a new secret changes every puppet's identity)", err)
	}
	if err != nil {
		return nil, err
	}
	sec, err := identity.ParseSecret(strings.TrimSpace(string(b)))
	clear(b)
	if err != nil {
		return nil, fmt.Errorf("gateway secret %s: %w", path, err)
	}
	return sec, nil
}
