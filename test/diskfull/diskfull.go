// Package diskfull gives tests a real file system that fills up: a tmpfs of a chosen
// size mounted on a temp dir, and a filler file that takes the room left and gives it
// back. Writes to a full one fail with ENOSPC from the kernel, as on a full disk, so
// SQLite answers SQLITE_FULL and PostgreSQL disk_full (SQLSTATE 53100) on their own.
//
//	fs := diskfull.Mount(t, 8<<20) // fs.Dir: an 8 MiB file system, unmounted with the test
//	…                              // put a database on it
//	fs.Fill(t)                     // no room left
//	fs.Free(t)                     // room again, without a restart of anything
//
// tmpfs rather than a loop-mounted ext4: ext4 keeps blocks reserved for root (5% by
// default), so a test running as root (CI does) would not see the disk full when other
// users would; tmpfs has no reserve, needs no image file, and its size is exact.
//
// Mounting takes CAP_SYS_ADMIN (root, as CI and `make test` run): without it Mount
// fails the test naming why; it never skips. It must be imported only by _test.go
// files.
package diskfull

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// FS is one mounted tmpfs.
type FS struct {
	// Dir is the mount point.
	Dir  string
	size int64
}

// Mount mounts a tmpfs of size bytes (rounded up to pages by the kernel) on a new temp
// dir and unmounts it when tb ends (lazily: a process of the test that still holds a
// file on it, such as a database server, does not hold the unmount up).
func Mount(tb testing.TB, size int64) *FS {
	tb.Helper()
	dir := tb.TempDir()
	opts := fmt.Sprintf("size=%d,mode=0700", size)
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, opts); err != nil {
		why := ""
		if errors.Is(err, syscall.EPERM) {
			why = " (mounting needs root, CAP_SYS_ADMIN: run the tests as root, as CI and `make test` on a fresh machine do)"
		}
		tb.Fatalf("diskfull: mount a %d-byte tmpfs on %s: %v%s", size, dir, err, why)
	}
	tb.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			tb.Errorf("diskfull: unmount %s: %v", dir, err)
		}
	})
	return &FS{Dir: dir, size: size}
}

// Chown hands the file system's root to uid:gid (a server that refuses to run as root,
// such as PostgreSQL, writes there as its own user) and lets others pass through the
// test's temp dir above it (mode 0711: they can reach the mount point, not list).
func (fs *FS) Chown(tb testing.TB, uid, gid int) {
	tb.Helper()
	if err := os.Chown(fs.Dir, uid, gid); err != nil {
		tb.Fatalf("diskfull: chown %s: %v", fs.Dir, err)
	}
	if err := os.Chmod(filepath.Dir(fs.Dir), 0o711); err != nil {
		tb.Fatalf("diskfull: %v", err)
	}
}

// Avail is the room left, in bytes.
func (fs *FS) Avail(tb testing.TB) int64 {
	tb.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(fs.Dir, &st); err != nil {
		tb.Fatalf("diskfull: statfs %s: %v", fs.Dir, err)
	}
	return int64(st.Bavail) * st.Bsize
}

// filler is the file that takes the room left.
func (fs *FS) filler() string { return filepath.Join(fs.Dir, "diskfull.filler") }

// Fill writes the filler file until the file system answers ENOSPC: nothing else can
// grow a file on it afterwards. It fails tb unless the file system ends full.
func (fs *FS) Fill(tb testing.TB) {
	tb.Helper()
	f, err := os.OpenFile(fs.filler(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		tb.Fatalf("diskfull: create the filler: %v", err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for len(chunk) > 0 {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				tb.Fatalf("diskfull: fill %s: %v, want ENOSPC at the end", fs.Dir, err)
			}
			chunk = chunk[:len(chunk)/2] // a partial write took what fitted; try smaller
		}
	}
	if avail := fs.Avail(tb); avail != 0 {
		tb.Fatalf("diskfull: %d bytes still free after filling %s", avail, fs.Dir)
	}
}

// Free removes the filler: the room it took is free again at once.
func (fs *FS) Free(tb testing.TB) {
	tb.Helper()
	if err := os.Remove(fs.filler()); err != nil {
		tb.Fatalf("diskfull: remove the filler: %v", err)
	}
}
