// Package buildonce builds what a test harness needs (a reference binary, a server) once
// per machine: concurrent test processes wait on one file lock instead of building it
// side by side, and whoever gets the lock second finds it done.
package buildonce

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Do returns at once when ready() holds. Otherwise it takes an exclusive flock on
// lockPath (creating the file and its directory), checks ready() again (another process
// may have built it while this one waited) and calls build. built says whether this call
// ran build.
func Do(lockPath string, ready func() bool, build func() error) (built bool, err error) {
	if ready() {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(lockPath), 0o755); err != nil {
		return false, err
	}
	lock, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return false, fmt.Errorf("open lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return false, fmt.Errorf("lock %s: %w", lockPath, err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // released on close anyway
	if ready() {
		return false, nil // another process built it while we waited
	}
	return true, build()
}

// Executable reports whether path is a regular file with an execute bit.
func Executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
