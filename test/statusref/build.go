package statusref

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/statusgate/statusgate/test/buildonce"
)

// BinEnv names the environment variable that, when set, gives the path of a prebuilt
// statusgo-ref binary; Build then builds nothing.
const BinEnv = "STATUSGATE_STATUSGO_REF"

// builtName is the build output name that test/statusgo/.gitignore ignores; it is left
// out of the content hash.
const builtName = "statusgo-ref"

// Build returns the path of a statusgo-ref binary built from test/statusgo. If
// STATUSGATE_STATUSGO_REF is set, that path is used as is. Otherwise the binary lives in
// <os.UserCacheDir()>/statusgate (~/.cache/statusgate on Linux) under a name derived
// from a sha256 of every file in test/statusgo and the Go version, and is built there
// when missing, under an exclusive flock on statusgo-ref.lock in that directory, so
// parallel test binaries build once. A cold build takes about a minute on two idle
// cores (status-go, go-ethereum and two cgo libraries); a failed build fails tb.
func Build(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv(BinEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			tb.Fatalf("%s: %v", BinEnv, err)
		}
		return p
	}
	p, built, took, err := build()
	if err != nil {
		tb.Fatalf("build statusgo-ref: %v", err)
	}
	if built {
		tb.Logf("built statusgo-ref in %v: %s", took.Round(time.Millisecond), p)
	}
	return p
}

func build() (path string, built bool, took time.Duration, err error) {
	dir, err := moduleDir()
	if err != nil {
		return "", false, 0, err
	}
	sum, err := hashTree(dir)
	if err != nil {
		return "", false, 0, err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", false, 0, err
	}
	outDir := filepath.Join(cache, "statusgate")
	final := filepath.Join(outDir, "statusgo-ref-"+sum[:16])
	start := time.Now()
	built, err = buildonce.Do(filepath.Join(outDir, "statusgo-ref.lock"), func() bool { return buildonce.Executable(final) }, func() error {
		tmp, err := os.CreateTemp(outDir, ".statusgo-ref-*.tmp")
		if err != nil {
			return err
		}
		tmpName := tmp.Name()
		tmp.Close()
		defer os.Remove(tmpName) // no-op after a successful rename
		cmd := exec.Command(goTool(), "build", "-o", tmpName, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=1",
			"GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -mod=mod"))
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build in %s: %v\n%s", dir, err, out)
		}
		return os.Rename(tmpName, final)
	})
	if err != nil {
		return "", false, 0, err
	}
	if !built {
		return final, false, 0, nil
	}
	return final, true, time.Since(start), nil
}

// moduleDir finds test/statusgo next to this source file.
func moduleDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate statusref source file")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "statusgo")
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return "", fmt.Errorf("statusgo module: %w", err)
	}
	return dir, nil
}

// hashTree returns the hex sha256 over the Go version and the relative path and
// contents of every regular file under dir, in lexical order, leaving out a
// statusgo-ref binary built in dir itself and the Markdown files (documentation: a
// change to them does not change the binary).
func hashTree(dir string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s %s/%s\x00", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == builtName || strings.HasSuffix(rel, ".md") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", rel, len(data))
		h.Write(data)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", dir, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// goTool returns the go command of the toolchain running the tests.
func goTool() string {
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return "go"
}
