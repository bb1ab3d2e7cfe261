package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// raceEnv, when set to 1, builds the bridge binary with the race detector too (slower:
// the package then takes about twice as long).
const raceEnv = "STATUSGATE_E2E_RACE"

// bridgeBin is the bridge binary TestMain builds for this test run. It is written
// once, before any test runs, and only read afterwards.
var bridgeBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	dir, err := os.MkdirTemp("", "statusgate-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: create build dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin, err := buildBridge(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	bridgeBin = bin
	return m.Run()
}

// buildBridge builds ./cmd/bridge of this module into dir.
func buildBridge(dir string) (string, error) {
	bin := filepath.Join(dir, "bridge")
	args := []string{"build", "-o", bin}
	if os.Getenv(raceEnv) == "1" {
		args = append(args, "-race")
	}
	args = append(args, "github.com/statusgate/statusgate/cmd/bridge")
	start := time.Now()
	cmd := exec.Command(goTool(), args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %v: %v\n%s", args, err, out)
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "e2e: built bridge (race=%v) in %v\n", os.Getenv(raceEnv) == "1", time.Since(start).Round(time.Millisecond))
	}
	return bin, nil
}

// goTool returns the go command of the toolchain running the tests.
func goTool() string {
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return "go"
}
