package keyfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestCreate_newFileModesAndExclusive(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "secret")
	if err := Create(path, []byte("one\n")); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("file mode %v, want 0600", m)
	}
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("directory mode %v, want 0700", m)
	}
	err := Create(path, []byte("two\n"))
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Create: %v, want fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "one\n" {
		t.Errorf("an existing file was changed: %q", b)
	}
}

// TestReplace_modeRegardlessOfOldFile: issue 15 finding 12 (`generate-registration
// -force` kept a 0644 file's mode, tokens and all).
func TestReplace_modeRegardlessOfOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "registration.yaml")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil { // whatever the umask
		t.Fatal(err)
	}
	if err := Replace(path, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("mode %v after Replace, want 0600", m)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Errorf("content %q", b)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
	if err := Replace(filepath.Join(dir, "fresh"), []byte("x")); err != nil {
		t.Errorf("Replace of a missing file: %v", err)
	}
}

func TestExposed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cfg")
	if err := Create(path, nil); err != nil {
		t.Fatal(err)
	}
	if exposed, _, err := Exposed(path); exposed || err != nil {
		t.Errorf("0600: exposed=%v err=%v", exposed, err)
	}
	for _, m := range []fs.FileMode{0o640, 0o604, 0o644} {
		if err := os.Chmod(path, m); err != nil {
			t.Fatal(err)
		}
		if exposed, got, err := Exposed(path); !exposed || got != m || err != nil {
			t.Errorf("%v: exposed=%v mode=%v err=%v", m, exposed, got, err)
		}
	}
	if _, _, err := Exposed(path + ".missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
