package buildonce

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// Callers racing on one lock build once: each opens the lock file itself, as separate
// processes do, and flock excludes open files, not processes.
func TestDo_buildsOnce(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "tool", "bin")
	var builds atomic.Int32
	ready := func() bool { return Executable(out) }
	build := func() error {
		builds.Add(1)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		return os.WriteFile(out, []byte("#!/bin/sh\n"), 0o755)
	}
	var wg sync.WaitGroup
	var built atomic.Int32
	for range 8 {
		wg.Go(func() {
			b, err := Do(filepath.Join(dir, "locks", "tool.lock"), ready, build)
			if err != nil {
				t.Error(err)
			}
			if b {
				built.Add(1)
			}
		})
	}
	wg.Wait()
	if builds.Load() != 1 || built.Load() != 1 {
		t.Fatalf("%d builds, %d callers say they built, want 1 and 1", builds.Load(), built.Load())
	}
}

func TestDo_buildError(t *testing.T) {
	boom := errors.New("boom")
	built, err := Do(filepath.Join(t.TempDir(), "x.lock"), func() bool { return false }, func() error { return boom })
	if !built || !errors.Is(err, boom) {
		t.Fatalf("built %v, err %v", built, err)
	}
}
