package identity

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"encoding/binary"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	statusalias "github.com/status-im/status-go/protocol/identity/alias"
)

// Word-list files and sizes. status-go's alias reduces the generator's output modulo the
// list lengths, so lists of any other length would give different names from Status's.
const (
	// AdjectivesFile is the file name, inside the alias-words directory, of the adjectives.
	AdjectivesFile = "adjectives.txt"
	// AnimalsFile is the file name, inside the alias-words directory, of the animals.
	AnimalsFile = "animals.txt"
	// AdjectiveCount is the number of adjectives in status-go's list.
	AdjectiveCount = 1389
	// AnimalCount is the number of animals in status-go's list.
	AnimalCount = 1704

	// aliasPoly is the LFSR feedback polynomial: taps at bits 3, 4, 5 and 7.
	aliasPoly uint64 = 0xB8
	// maxWordFileSize bounds what LoadAliasWords reads from one file; the real lists are
	// about 10 KiB.
	maxWordFileSize = 1 << 20
)

// AliasWords holds two word lists of the three-word alias that replace Status's own: the
// override identity.alias_words loads. It is immutable after construction and safe for
// concurrent use. A nil *AliasWords stands for Status's lists, compiled in from status-go
// (protocol/identity/alias), and is valid for Namer.
type AliasWords struct {
	adjectives []string
	animals    []string
}

// LoadAliasWords reads dir/adjectives.txt and dir/animals.txt, one word a line, in the
// order of status-go's protocol/identity/alias/data.go. Blank lines and surrounding white
// space (including CR) are ignored. It fails, wrapping ErrAliasWords, when a file is
// missing, unreadable, larger than 1 MiB or holds a word containing white space, and,
// wrapping ErrWordCount, when the counts are not 1389 and 1704.
//
// It is meant to be called once at start-up by the composition root (config key
// identity.alias_words); it does file I/O and nothing else.
func LoadAliasWords(dir string) (*AliasWords, error) {
	adjectives, err := readWordFile(filepath.Join(dir, AdjectivesFile))
	if err != nil {
		return nil, fmt.Errorf("load alias words: %w", err)
	}
	animals, err := readWordFile(filepath.Join(dir, AnimalsFile))
	if err != nil {
		return nil, fmt.Errorf("load alias words: %w", err)
	}
	if len(adjectives) != AdjectiveCount {
		return nil, fmt.Errorf("load alias words: %w: %s has %d words, want %d",
			ErrWordCount, filepath.Join(dir, AdjectivesFile), len(adjectives), AdjectiveCount)
	}
	if len(animals) != AnimalCount {
		return nil, fmt.Errorf("load alias words: %w: %s has %d words, want %d",
			ErrWordCount, filepath.Join(dir, AnimalsFile), len(animals), AnimalCount)
	}
	return &AliasWords{adjectives: adjectives, animals: animals}, nil
}

// NewAliasWords builds AliasWords from lists already in memory. It copies them and applies
// the same checks as LoadAliasWords (exact counts, non-empty words without white space).
func NewAliasWords(adjectives, animals []string) (*AliasWords, error) {
	if err := checkWords("adjectives", adjectives, AdjectiveCount); err != nil {
		return nil, fmt.Errorf("build alias words: %w", err)
	}
	if err := checkWords("animals", animals, AnimalCount); err != nil {
		return nil, fmt.Errorf("build alias words: %w", err)
	}
	return &AliasWords{
		adjectives: append([]string(nil), adjectives...),
		animals:    append([]string(nil), animals...),
	}, nil
}

func checkWords(name string, words []string, want int) error {
	if len(words) != want {
		return fmt.Errorf("%w: %s has %d words, want %d", ErrWordCount, name, len(words), want)
	}
	for i, w := range words {
		if w == "" || strings.IndexFunc(w, unicode.IsSpace) >= 0 {
			return fmt.Errorf("%w: %s word %d is %q", ErrAliasWords, name, i, w)
		}
	}
	return nil
}

// readWordFile reads one word list; errors name the file and, for a bad word, the line.
func readWordFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAliasWords, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxWordFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", ErrAliasWords, path, err)
	}
	if len(data) > maxWordFileSize {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrAliasWords, path, maxWordFileSize)
	}
	var words []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		w := strings.TrimSpace(sc.Text())
		if w == "" {
			continue
		}
		if strings.IndexFunc(w, unicode.IsSpace) >= 0 {
			return nil, fmt.Errorf("%w: %s line %d: %q is not one word", ErrAliasWords, path, line, w)
		}
		words = append(words, w)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: scan %s: %w", ErrAliasWords, path, err)
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("%w: %s holds no words", ErrWordCount, path)
	}
	return words, nil
}

// Alias returns the three-word alias of pub, "Adjective Adjective Animal", as status-go
// (GenerateFromPublicKey) and Status 1.x compute it, from w's lists; on a nil *AliasWords
// from Status's own, through status-go. It returns "" for a nil key.
func (w *AliasWords) Alias(pub *ecdsa.PublicKey) string {
	if !usable(pub) {
		return ""
	}
	if w == nil {
		return statusalias.GenerateFromPublicKey(pub)
	}
	return w.GenerateAliasFromSeed(AliasSeed(pub))
}

// GenerateAliasFromSeed returns the alias for an LFSR seed (status-go generateAddress);
// with Status's lists (a nil *AliasWords) seed 42 gives "Hard Tame Brownbutterfly".
func (w *AliasWords) GenerateAliasFromSeed(seed uint64) string {
	if w == nil {
		// status-go's generator reads only the low 64 bits of X, which here are seed.
		return statusalias.GenerateFromPublicKey(&ecdsa.PublicKey{X: new(big.Int).SetUint64(seed)})
	}
	a1, a2, an := AliasIndices(seed)
	return w.adjectives[a1] + " " + w.adjectives[a2] + " " + w.animals[an]
}

// AliasSeed returns the alias seed of pub: the low 64 bits of its X coordinate (status-go's
// uint64(X.Int64()) on a positive X). It returns 0 for a nil key.
func AliasSeed(pub *ecdsa.PublicKey) uint64 {
	if !usable(pub) {
		return 0
	}
	var low [8]byte
	x := pub.X.Bytes() // big-endian |X|
	if len(x) > len(low) {
		x = x[len(x)-len(low):]
	}
	copy(low[len(low)-len(x):], x)
	return binary.BigEndian.Uint64(low[:])
}

// AliasIndices returns the list indices the alias of seed uses: two adjectives and one
// animal, from three successive LFSR outputs reduced modulo AdjectiveCount, AdjectiveCount
// and AnimalCount.
func AliasIndices(seed uint64) (adjective1, adjective2, animal int) {
	g := lfsr{state: seed}
	adjective1 = int(g.next() % AdjectiveCount)
	adjective2 = int(g.next() % AdjectiveCount)
	animal = int(g.next() % AnimalCount)
	return adjective1, adjective2, animal
}

// lfsr is status-go's 64-bit Fibonacci LFSR with polynomial aliasPoly.
type lfsr struct{ state uint64 }

// next shifts in the XOR of the tapped bits and returns the new state.
func (g *lfsr) next() uint64 {
	var bit uint64
	for i := uint(0); i < 64; i++ {
		if aliasPoly&(1<<i) != 0 {
			bit ^= g.state >> i
		}
	}
	g.state = g.state<<1 | bit&1
	return g.state
}

// Namer names Status users for display by their three-word alias: from Status's own word
// lists unless it was built over an override. The zero value and a nil *Namer use
// Status's lists. It is immutable and safe for concurrent use.
type Namer struct {
	words *AliasWords
}

// NewNamer returns a Namer over words; nil (no identity.alias_words configured) means
// Status's own lists.
func NewNamer(words *AliasWords) *Namer {
	return &Namer{words: words}
}

// Name returns the display name of pub: its three-word alias. It returns "" for a nil
// key.
func (n *Namer) Name(pub *ecdsa.PublicKey) string {
	if n == nil {
		return (*AliasWords)(nil).Alias(pub)
	}
	return n.words.Alias(pub)
}

// Overridden reports whether n names from word lists other than Status's own (loaded from
// identity.alias_words).
func (n *Namer) Overridden() bool {
	return n != nil && n.words != nil
}
