// Package keyfile writes secret files — the node key, the gateway secret, the API
// token, the Matrix registration, a configuration holding tokens — and is the only
// code that does (STYLE.md rule 30). A file it writes has mode 0600, lives in a
// directory created 0700, and is fsynced together with its directory before the
// function returns: after a crash or a power loss it is either absent or whole. That
// matters most for the gateway secret: a secret lost after `bridge init` reported it
// written would make the next init create another one and silently re-key every
// puppet.
//
// It must not read, parse or log what it writes, and imports no other statusgate
// package.
package keyfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Mode is the permission of every file this package writes.
const Mode fs.FileMode = 0o600

// Create writes data to a new file at path. An existing file, even one created
// meanwhile by another process, is never touched: the error then wraps fs.ErrExist.
// Missing directories are created with mode 0700. On error nothing is left at path.
// Errors name path but never quote data.
func Create(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := mkdirSynced(dir); err != nil {
		return err
	}
	// O_EXCL: two processes racing on a fresh data dir must not end up with two keys.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, Mode)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := writeSync(f, data); err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Replace writes data to path whether or not a file is there: it writes a new file
// beside it and renames it over the old one, so the result has mode 0600 whatever the
// old file's mode was, and a crash leaves either the old content or the new one, never
// a mix. A symbolic link at path is replaced, not followed.
func Replace(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := mkdirSynced(dir); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".new-*") // mode 0600
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	tmp := f.Name()
	if err := f.Chmod(Mode); err != nil { // CreateTemp's 0600, whatever a future Go does
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := writeSync(f, data); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeSync writes data to f, fsyncs and closes it.
func writeSync(f *os.File, data []byte) error {
	_, werr := f.Write(data)
	var serr error
	if werr == nil {
		serr = f.Sync()
	}
	return errors.Join(werr, serr, f.Close())
}

// mkdirSynced creates dir (mode 0700) and any missing parent, fsyncing the parent of
// each directory it created so that the new entries survive a crash.
func mkdirSynced(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("stat %s: %w", dir, err)
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirSynced(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create directory %s: %w", dir, err)
	}
	return syncDir(parent)
}

// syncDir fsyncs the directory dir, making the entries created or renamed in it
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	serr := d.Sync()
	if err := errors.Join(serr, d.Close()); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// Exposed reports whether the file at path can be read by its group or by others
// (mode & 0o077 != 0), and its permission bits. A caller warns or refuses; a missing
// file is an error wrapping fs.ErrNotExist.
func Exposed(path string) (bool, fs.FileMode, error) {
	st, err := os.Stat(path)
	if err != nil {
		return false, 0, err
	}
	return st.Mode().Perm()&0o077 != 0, st.Mode().Perm(), nil
}
