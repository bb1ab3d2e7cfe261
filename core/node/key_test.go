package node

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
)

func TestLoadOrCreateKey_createsThenReloads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "keys") // neither level exists yet
	path := filepath.Join(dir, "nodekey")

	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != 0o600 {
		t.Errorf("key file mode %v, want 0600", got)
	}
	dst, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := dst.Mode().Perm(); got != 0o700 {
		t.Errorf("key dir mode %v, want 0700", got)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if s := strings.TrimSpace(string(raw)); len(s) != 64 {
		t.Errorf("key file holds %d characters, want 64 hex", len(s))
	}

	k2, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(crypto.FromECDSA(k1), crypto.FromECDSA(k2)) {
		t.Error("second call returned a different key")
	}
}

func TestLoadOrCreateKey_refusesReadableByOthers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nodekey")
	if _, err := LoadOrCreateKey(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadOrCreateKey(path)
	if err == nil {
		t.Fatal("key file with mode 0644 accepted")
	}
	for _, want := range []string{path, "-rw-r--r--", "chmod 600"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestLoadOrCreateKey_rejectsBadContent(t *testing.T) {
	cases := []struct {
		name, content, want string
	}{
		{"not hex", strings.Repeat("zz", 32), "not hex"},
		{"too short", strings.Repeat("ab", 31), "nodekey"},
		{"too long", strings.Repeat("ab", 33), "nodekey"},
		{"empty", "", "nodekey"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "nodekey")
			if err := os.WriteFile(path, []byte(tc.content+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreateKey(path)
			if err == nil {
				t.Fatalf("accepted %q", tc.content)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			// A bad file is reported, never replaced.
			if b, _ := os.ReadFile(path); string(b) != tc.content+"\n" {
				t.Errorf("key file rewritten to %q", b)
			}
		})
	}
}
