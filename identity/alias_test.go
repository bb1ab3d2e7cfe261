package identity

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// syntheticWords returns lists of the right sizes whose words name their index, so tests
// that check the algorithm, not Status's data, run without the shared word lists.
func syntheticWords(nAdj, nAnimal int) (adjectives, animals []string) {
	for i := range nAdj {
		adjectives = append(adjectives, fmt.Sprintf("Adj%d", i))
	}
	for i := range nAnimal {
		animals = append(animals, fmt.Sprintf("Animal%d", i))
	}
	return adjectives, animals
}

func writeWords(t *testing.T, dir, name string, words []string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.Join(words, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestAliasIndices_vectors(t *testing.T) {
	for _, v := range loadVectors(t).Keys {
		pub := mustParse(t, v.ChatKey)
		wantSeed, err := strconv.ParseUint(v.AliasSeed, 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		if got := AliasSeed(pub); got != wantSeed {
			t.Errorf("AliasSeed = %#x, want %#x", got, wantSeed)
		}
		a1, a2, an := AliasIndices(wantSeed)
		if got := [3]int{a1, a2, an}; got != v.AliasIndices {
			t.Errorf("AliasIndices(%#x) = %v, want %v", wantSeed, got, v.AliasIndices)
		}
	}
}

func TestLFSR_next(t *testing.T) {
	// Feedback is the XOR of bits 3, 4, 5 and 7 of the old state.
	cases := []struct{ state, want uint64 }{
		{0, 0},
		{1, 2},
		{1 << 3, 1<<4 | 1},
		{1<<3 | 1<<4, 1<<4 | 1<<5},
		{0xB8, 0xB8 << 1},
		{1 << 63, 0},
		{1<<63 | 1<<7, 1<<8 | 1},
	}
	for _, tc := range cases {
		g := lfsr{state: tc.state}
		if got := g.next(); got != tc.want {
			t.Errorf("next() from %#x = %#x, want %#x", tc.state, got, tc.want)
		}
	}
}

// TestAlias_statusVectors checks the names given with Status's own word lists, compiled in
// from status-go: no word-list files are needed.
func TestAlias_statusVectors(t *testing.T) {
	v := loadVectors(t)
	var builtin *AliasWords
	for _, k := range v.Keys {
		pub := mustParse(t, k.ChatKey)
		for name, got := range map[string]string{
			"Alias":           builtin.Alias(pub),
			"NewNamer(nil)":   NewNamer(nil).Name(pub),
			"zero Namer":      (&Namer{}).Name(pub),
			"nil *Namer":      (*Namer)(nil).Name(pub),
			"seed of its key": builtin.GenerateAliasFromSeed(AliasSeed(pub)),
		} {
			if got != k.Alias {
				t.Errorf("%s(%s) = %q, want %q", name, k.ShortKey, got, k.Alias)
			}
		}
	}
	for _, s := range v.Seeds {
		if got := builtin.GenerateAliasFromSeed(s.Seed); got != s.Alias {
			t.Errorf("GenerateAliasFromSeed(%d) = %q, want %q", s.Seed, got, s.Alias)
		}
	}
	// The key whose private scalar is 1 (issue 13, checked against status-go v0.70.1).
	one := mustParse(t, "0x0479be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"+
		"483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8")
	if got, want := NewNamer(nil).Name(one), "Moral Overdue Bushviper"; got != want {
		t.Errorf("Name(G) = %q, want %q", got, want)
	}
	if NewNamer(nil).Overridden() || (*Namer)(nil).Overridden() || (&Namer{}).Overridden() {
		t.Error("Overridden without word lists = true")
	}
}

// TestAlias_statusListsAsOverride loads Status's lists through identity.alias_words's path
// (LoadAliasWords) from the shared test data, when present, and checks they name as the
// compiled-in lists do.
func TestAlias_statusListsAsOverride(t *testing.T) {
	v := loadVectors(t)
	words := statusWords(t)
	for _, k := range v.Keys {
		if got := NewNamer(words).Name(mustParse(t, k.ChatKey)); got != k.Alias {
			t.Errorf("Namer.Name(%s) = %q, want %q", k.ShortKey, got, k.Alias)
		}
	}
	for _, s := range v.Seeds {
		if got := words.GenerateAliasFromSeed(s.Seed); got != s.Alias {
			t.Errorf("GenerateAliasFromSeed(%d) = %q, want %q", s.Seed, got, s.Alias)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		seed := r.Uint64()
		if got, want := words.GenerateAliasFromSeed(seed), (*AliasWords)(nil).GenerateAliasFromSeed(seed); got != want {
			t.Fatalf("seed %#x: the shared lists give %q, status-go %q", seed, got, want)
		}
	}
}

func TestAlias_usesIndices(t *testing.T) {
	adj, ani := syntheticWords(AdjectiveCount, AnimalCount)
	words, err := NewAliasWords(adj, ani)
	if err != nil {
		t.Fatal(err)
	}
	adj[0] = "Changed" // NewAliasWords copied the lists
	for _, seed := range []uint64{0, 1, 42, 0xab97bd50054c6ebc, ^uint64(0)} {
		a1, a2, an := AliasIndices(seed)
		want := fmt.Sprintf("Adj%d Adj%d Animal%d", a1, a2, an)
		if got := words.GenerateAliasFromSeed(seed); got != want {
			t.Errorf("GenerateAliasFromSeed(%#x) = %q, want %q", seed, got, want)
		}
	}
}

func TestNamer_override(t *testing.T) {
	v := loadVectors(t).Keys[0]
	pub := mustParse(t, v.ChatKey)
	adj, ani := syntheticWords(AdjectiveCount, AnimalCount)
	words, err := NewAliasWords(adj, ani)
	if err != nil {
		t.Fatal(err)
	}
	a1, a2, an := v.AliasIndices[0], v.AliasIndices[1], v.AliasIndices[2]
	if got, want := NewNamer(words).Name(pub), fmt.Sprintf("Adj%d Adj%d Animal%d", a1, a2, an); got != want {
		t.Errorf("Name over the override = %q, want %q", got, want)
	}
	if !NewNamer(words).Overridden() {
		t.Error("Overridden with words = false")
	}
}

func TestNamer_nilKey(t *testing.T) {
	adj, ani := syntheticWords(AdjectiveCount, AnimalCount)
	words, err := NewAliasWords(adj, ani)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Namer{NewNamer(nil), NewNamer(words)} {
		if got := n.Name(nil); got != "" {
			t.Errorf("Name(nil) = %q, want \"\"", got)
		}
		if got := n.Name(&ecdsa.PublicKey{}); got != "" {
			t.Errorf("Name(empty key) = %q, want \"\"", got)
		}
	}
}

func TestLoadAliasWords_acceptsFormatting(t *testing.T) {
	adj, ani := syntheticWords(AdjectiveCount, AnimalCount)
	dir := t.TempDir()
	// CRLF line ends, blank lines and padding are tolerated.
	padded := "\r\n  " + strings.Join(adj, "\r\n\r\n") + " \r\n"
	if err := os.WriteFile(filepath.Join(dir, AdjectivesFile), []byte(padded), 0o644); err != nil {
		t.Fatal(err)
	}
	writeWords(t, dir, AnimalsFile, ani)
	words, err := LoadAliasWords(dir)
	if err != nil {
		t.Fatalf("LoadAliasWords: %v", err)
	}
	if got, want := words.GenerateAliasFromSeed(42), "Adj"; !strings.HasPrefix(got, want) {
		t.Errorf("alias %q", got)
	}
}

func TestLoadAliasWords_rejects(t *testing.T) {
	adj, ani := syntheticWords(AdjectiveCount, AnimalCount)
	cases := []struct {
		name      string
		adj, ani  []string // nil: file not written
		raw       string   // if set, written as adjectives.txt instead of adj
		want      error
		mentioned string // text the error must contain
	}{
		{"missing adjectives", nil, ani, "", ErrAliasWords, AdjectivesFile},
		{"missing animals", adj, nil, "", ErrAliasWords, AnimalsFile},
		{"adjective short by one", adj[1:], ani, "", ErrWordCount, AdjectivesFile + " has 1388 words, want 1389"},
		{"animal extra", adj, append(ani[:len(ani):len(ani)], "Extra"), "", ErrWordCount, AnimalsFile + " has 1705 words, want 1704"},
		{"lists swapped", ani, adj, "", ErrWordCount, "has 1704 words, want 1389"},
		{"empty adjectives", nil, ani, "\n\n", ErrWordCount, "holds no words"},
		{"two words on a line", nil, ani, "Able\nTwo Words\n", ErrAliasWords, "line 2"},
		{"file too large", nil, ani, strings.Repeat("a", maxWordFileSize+1), ErrAliasWords, "larger than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			switch {
			case tc.raw != "":
				if err := os.WriteFile(filepath.Join(dir, AdjectivesFile), []byte(tc.raw), 0o644); err != nil {
					t.Fatal(err)
				}
			case tc.adj != nil:
				writeWords(t, dir, AdjectivesFile, tc.adj)
			}
			if tc.ani != nil {
				writeWords(t, dir, AnimalsFile, tc.ani)
			}
			words, err := LoadAliasWords(dir)
			if err == nil {
				t.Fatalf("LoadAliasWords = %v, want error", words)
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrAliasWords) {
				t.Errorf("error %q does not wrap %q and ErrAliasWords", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.mentioned) {
				t.Errorf("error %q does not mention %q", err, tc.mentioned)
			}
			if !strings.HasPrefix(err.Error(), "load alias words: ") {
				t.Errorf("error %q does not start with \"load alias words: \"", err)
			}
		})
	}
	t.Run("missing directory", func(t *testing.T) {
		_, err := LoadAliasWords(filepath.Join(t.TempDir(), "nope"))
		if !errors.Is(err, ErrAliasWords) || !errors.Is(err, os.ErrNotExist) {
			t.Errorf("error %v does not wrap ErrAliasWords and os.ErrNotExist", err)
		}
	})
}

func TestNewAliasWords_rejects(t *testing.T) {
	adj, ani := syntheticWords(AdjectiveCount, AnimalCount)
	blank := append([]string(nil), adj...)
	blank[7] = ""
	spaced := append([]string(nil), ani...)
	spaced[9] = "Sea lion"
	cases := []struct {
		name     string
		adj, ani []string
		want     error
	}{
		{"no words", nil, nil, ErrWordCount},
		{"too few animals", adj, ani[:10], ErrWordCount},
		{"blank word", blank, ani, ErrAliasWords},
		{"word with space", adj, spaced, ErrAliasWords},
	}
	for _, tc := range cases {
		if _, err := NewAliasWords(tc.adj, tc.ani); !errors.Is(err, tc.want) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
		}
	}
}

func BenchmarkAlias(b *testing.B) {
	adj, ani := syntheticWords(AdjectiveCount, AnimalCount)
	words, err := NewAliasWords(adj, ani)
	if err != nil {
		b.Fatal(err)
	}
	pub := mustParse(b, loadVectors(b).Keys[0].ChatKey)
	b.ReportAllocs()
	for b.Loop() {
		_ = words.Alias(pub)
	}
}
