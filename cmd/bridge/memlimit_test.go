package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestParseByteSize(t *testing.T) {
	good := map[string]byteSize{
		"0": 0, "268435456": 256 << 20, "268435456B": 256 << 20, "512KiB": 512 << 10,
		"256MiB": 256 << 20, "2GiB": 2 << 30, "1TiB": 1 << 40, "8388607TiB": 8388607 << 40,
	}
	for s, want := range good {
		if got, err := parseByteSize(s); err != nil || got != want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	// What the runtime's GOMEMLIMIT parser refuses, we refuse: decimal prefixes, spaces,
	// signs, fractions, lower case, overflow.
	for _, s := range []string{"", "MiB", "256MB", "256M", "256 MiB", "256mib", "-1", "+5", "1.5GiB", "256iB",
		"8388608TiB", "9223372036854775808", "lots"} {
		if got, err := parseByteSize(s); err == nil {
			t.Errorf("parseByteSize(%q) = %d, want an error", s, got)
		}
	}
	for b, want := range map[byteSize]string{0: "0B", 1000: "1000B", 32 << 20: "32MiB", 1536 << 20: "1536MiB", 3 << 30: "3GiB"} {
		if got := b.String(); got != want {
			t.Errorf("byteSize(%d).String() = %q, want %q", int64(b), got, want)
		}
	}
}

func TestLoadConfig_memoryLimit(t *testing.T) {
	example, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if example.Runtime.MemoryLimit != 0 {
		t.Errorf("config.example.yaml: runtime.memory_limit %v, want 0 (none)", example.Runtime.MemoryLimit)
	}
	for body, want := range map[string]byteSize{
		"data_dir: " + t.TempDir() + "\n":       0,
		"runtime: {memory_limit: 256MiB}\n":     256 << 20,
		"runtime: {memory_limit: 1073741824}\n": 1 << 30,
		"runtime: {memory_limit: 32MiB}\n":      32 << 20,
		"runtime: {memory_limit: 0}\n":          0,
	} {
		c, err := loadConfig(writeConfig(t, body))
		if err != nil {
			t.Errorf("%q: %v", body, err)
			continue
		}
		if c.Runtime.MemoryLimit != want {
			t.Errorf("%q: memory limit %v, want %v", body, c.Runtime.MemoryLimit, want)
		}
	}
	for body, want := range map[string]string{
		"runtime: {memory_limit: 16MiB}\n":    "runtime.memory_limit: 16MiB is less than 32MiB (the gateway's heap alone reaches 35 MiB",
		"runtime: {memory_limit: 256}\n":      "runtime.memory_limit: 256B is less than 32MiB",
		"runtime: {memory_limit: 33554431}\n": "runtime.memory_limit: 33554431B is less than 32MiB",
		"runtime: {memory_limit: 256MB}\n":    `runtime.memory_limit: "256MB" is not a size: want bytes, or a whole number with B, KiB, MiB, GiB or TiB`,
		"runtime: {memory_limit: -1}\n":       `"-1" is not a size`,
		"runtime: {memory_limit: [1]}\n":      "is not a size",
	} {
		_, err := loadConfig(writeConfig(t, body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one containing %q", body, err, want)
		}
	}
}

// TestCheckConfig_memoryLimitKey checks that check-config accepts a limit and reports a
// malformed one and one below the floor at their lines.
func TestCheckConfig_memoryLimitKey(t *testing.T) {
	_, header := cleanDataDir(t)
	checkConfigOK(t, header+"runtime:\n  memory_limit: 512MiB\n")
	checkLines(t, header+"log:\n  level: info\nruntime:\n  memory_limit: 16MiB\n",
		"6: runtime.memory_limit: 16MiB is less than 32MiB")
	checkLines(t, header+"runtime:\n  memory_limit: 1.5GiB\n",
		`4: runtime.memory_limit: "1.5GiB" is not a size`)
}

// runUntilStarted runs `bridge run` on the configuration at path until its node
// listens, hands its log to check, then stops it and waits for it.
func runUntilStarted(t *testing.T, path string, check func(logs string)) {
	t.Helper()
	logs := newLogWatch("node started")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	go func() { code <- run(ctx, []string{"run", "-config", path}, nil, &bytes.Buffer{}, logs) }()
	select {
	case <-logs.seen:
	case c := <-code:
		t.Fatalf("run exited with %d before the node started:\n%s", c, logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("node not started within 30 s:\n%s", logs)
	}
	check(logs.String())
	cancel()
	select {
	case c := <-code:
		if c != exitOK {
			t.Errorf("run: exit %d:\n%s", c, logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return within 30 s of cancel")
	}
}

// memoryLimitConfig is a configuration for runUntilStarted with runtime.memory_limit
// set to limit.
func memoryLimitConfig(t *testing.T, limit string) string {
	t.Helper()
	return writeConfig(t, "data_dir: "+filepath.Join(t.TempDir(), "data")+
		"\nnode:\n  listen_addr: 127.0.0.1:0\n  min_pow: 0\nruntime:\n  memory_limit: "+limit+"\n")
}

// TestRun_memoryLimit: bridge run sets runtime.memory_limit as the Go runtime's memory
// limit (read back with debug.SetMemoryLimit(-1)) and says so once, at Info.
func TestRun_memoryLimit(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "") // unset, as the runtime reads it
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	runUntilStarted(t, memoryLimitConfig(t, "320MiB"), func(logs string) {
		if got := debug.SetMemoryLimit(-1); got != 320<<20 {
			t.Errorf("memory limit %d, want 320 MiB (%d)", got, 320<<20)
		}
		if n := strings.Count(logs, `msg="memory limit"`); n != 1 || !strings.Contains(logs, `msg="memory limit" limit=320MiB from=runtime.memory_limit`) {
			t.Errorf("%d memory limit lines, want one saying 320MiB from runtime.memory_limit:\n%s", n, logs)
		}
	})
}

// memoryLimitChildEnv names the configuration TestRun_memoryLimitEnvWins' child process
// runs; unset, TestRun_memoryLimitChild is not a child and does nothing.
const memoryLimitChildEnv = "STATUSGATE_TEST_MEMORY_LIMIT_CONFIG"

// TestRun_memoryLimitEnvWins: with GOMEMLIMIT in the environment, which the Go runtime
// reads only when a process starts, bridge run leaves the runtime's limit at the
// environment's, whatever runtime.memory_limit says, and logs that GOMEMLIMIT applies.
// The run is a child process (this test binary again, TestRun_memoryLimitChild)
// started with GOMEMLIMIT=100MiB.
func TestRun_memoryLimitEnvWins(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestRun_memoryLimitChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "GOMEMLIMIT=100MiB", memoryLimitChildEnv+"="+memoryLimitConfig(t, "320MiB"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if want := fmt.Sprintf("memory limit read back: %d\n", 100<<20); !strings.Contains(string(out), want) {
		t.Errorf("child output lacks %q:\n%s", want, out)
	}
	if want := `msg="memory limit" limit=100MiB from=GOMEMLIMIT ignored="runtime.memory_limit 320MiB"`; strings.Count(string(out), `msg="memory limit"`) != 1 ||
		!strings.Contains(string(out), want) {
		t.Errorf("child output lacks one log line %q:\n%s", want, out)
	}
}

// TestRun_memoryLimitChild is TestRun_memoryLimitEnvWins' child process: it runs
// bridge run on the configuration memoryLimitChildEnv names and prints the runtime's
// memory limit and the run's log. Run by itself, without that variable, it is not a
// test and returns.
func TestRun_memoryLimitChild(t *testing.T) {
	path := os.Getenv(memoryLimitChildEnv)
	if path == "" {
		return
	}
	if v := os.Getenv("GOMEMLIMIT"); v == "" {
		t.Fatal("child started without GOMEMLIMIT")
	}
	limit := int64(math.MinInt64)
	var logs string
	runUntilStarted(t, path, func(l string) { limit, logs = debug.SetMemoryLimit(-1), l })
	fmt.Printf("memory limit read back: %d\n%s", limit, logs)
}
