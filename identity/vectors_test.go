package identity

import (
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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

// sharedDataDir locates Status's alias word lists as files (status-alias-adjectives.txt,
// status-alias-animals.txt): $STATUSGATE_SHARED_DATA if set, else ../../shared/data,
// else a temporary directory holding the lists of the status-go module this package
// links (statusGoWordFiles), so the test never depends on data outside the repository.
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
	if _, err := os.Stat(dir); err == nil {
		return dir
	} else if !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return statusGoWordFiles(t)
}

// statusGoWordFiles writes the word lists of status-go's protocol/identity/alias (its
// data.go, read from the module cache: the lists are unexported) one word a line into a
// temporary directory under the shared data's file names, and returns it.
func statusGoWordFiles(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/status-im/status-go").Output()
	if err != nil {
		t.Fatalf("locate the status-go module: %v", err)
	}
	src := filepath.Join(strings.TrimSpace(string(out)), "protocol", "identity", "alias", "data.go")
	f, err := parser.ParseFile(token.NewFileSet(), src, nil, 0)
	if err != nil {
		t.Fatalf("parse %s: %v", src, err)
	}
	lists := map[string][]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || len(vs.Values) != 1 {
			return true
		}
		lit, ok := vs.Values[0].(*ast.CompositeLit)
		if !ok {
			return true
		}
		for _, e := range lit.Elts {
			b, ok := e.(*ast.BasicLit)
			if !ok || b.Kind != token.STRING {
				t.Fatalf("%s: %s holds a %T, want string literals", src, vs.Names[0].Name, e)
			}
			w, err := strconv.Unquote(b.Value)
			if err != nil {
				t.Fatal(err)
			}
			lists[vs.Names[0].Name] = append(lists[vs.Names[0].Name], w)
		}
		return false
	})
	dir := t.TempDir()
	for name, file := range map[string]string{"adjectives": "status-alias-adjectives.txt", "animals": "status-alias-animals.txt"} {
		if len(lists[name]) == 0 {
			t.Fatalf("%s: no %s list", src, name)
		}
		if err := os.WriteFile(filepath.Join(dir, file), []byte(strings.Join(lists[name], "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
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
