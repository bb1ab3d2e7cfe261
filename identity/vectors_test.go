package identity

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// keyVector is one public key's derived values (testdata/vectors.json).
type keyVector struct {
	ChatKey       string   `json:"chat_key"`
	Compressed    string   `json:"compressed"`
	DisplayKey    string   `json:"display_key"`
	ShortKey      string   `json:"short_key"`
	AliasSeed     string   `json:"alias_seed"`
	AliasIndices  [3]int   `json:"alias_indices"`
	Alias         string   `json:"alias"`
	IdenticonMD5  string   `json:"identicon_md5"`
	IdenticonHue  float64  `json:"identicon_hue"`
	IdenticonGrid []string `json:"identicon_grid"`
}

type seedVector struct {
	Seed  uint64 `json:"seed"`
	Alias string `json:"alias"`
}

type vectorFile struct {
	Keys  []keyVector  `json:"keys"`
	Seeds []seedVector `json:"seeds"`
}

func loadVectors(t testing.TB) vectorFile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decode testdata/vectors.json: %v", err)
	}
	if len(v.Keys) == 0 || len(v.Seeds) == 0 {
		t.Fatal("testdata/vectors.json holds no vectors")
	}
	return v
}

// sharedDataDir locates the shared test data holding Status's alias word lists:
// $STATUSGATE_SHARED_DATA if set, else ../../shared/data. It skips the test, saying why,
// only when neither exists.
func sharedDataDir(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("STATUSGATE_SHARED_DATA"); dir != "" {
		if _, err := os.Stat(dir); err == nil {
			return dir
		} else if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("STATUSGATE_SHARED_DATA=%s: %v", dir, err)
		}
	}
	dir := filepath.Join("..", "..", "shared", "data")
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			t.Skipf("Status alias word lists not found: set STATUSGATE_SHARED_DATA to the directory "+
				"holding status-alias-adjectives.txt and status-alias-animals.txt (tried %q, then %s)",
				os.Getenv("STATUSGATE_SHARED_DATA"), dir)
		}
		t.Fatal(err)
	}
	return dir
}

// statusWordsDir copies the shared word lists into a temporary directory under the run-time
// names (adjectives.txt, animals.txt) and returns it.
func statusWordsDir(t testing.TB) string {
	t.Helper()
	src := sharedDataDir(t)
	dst := t.TempDir()
	copyFile(t, filepath.Join(src, "status-alias-adjectives.txt"), filepath.Join(dst, AdjectivesFile))
	copyFile(t, filepath.Join(src, "status-alias-animals.txt"), filepath.Join(dst, AnimalsFile))
	return dst
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// statusWords loads Status's word lists (see statusWordsDir).
func statusWords(t testing.TB) *AliasWords {
	t.Helper()
	w, err := LoadAliasWords(statusWordsDir(t))
	if err != nil {
		t.Fatal(err)
	}
	return w
}
