package main

import (
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/statusgate/statusgate/identity"
	"github.com/statusgate/statusgate/keyfile"
)

// chatAuthorsFile is bridge chat's address book in the data directory: the authors it
// has shown, so that `bridge chat --to` takes a three-word alias seen before.
const chatAuthorsFile = "chat_authors.json"

// maxChatAuthors bounds the address book; the least recently added go first.
const maxChatAuthors = 4096

// chatAuthor is one entry: the chat key (0x04…), the name shown and when first shown.
type chatAuthor struct {
	Key   string    `json:"key"`
	Alias string    `json:"alias"`
	Seen  time.Time `json:"seen"`
}

// chatAuthors is the address book. It is written (mode 0600, atomically) only when an
// author is new or shows under another name, not per message.
type chatAuthors struct {
	path string

	mu    sync.Mutex
	byKey map[string]chatAuthor
}

// loadChatAuthors reads the address book at path; a missing file is an empty book.
func loadChatAuthors(path string) (*chatAuthors, error) {
	a := &chatAuthors{path: path, byKey: map[string]chatAuthor{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return a, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var list []chatAuthor
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	for _, e := range list {
		if _, err := identity.ParseChatKey(e.Key); err == nil && len(a.byKey) < maxChatAuthors {
			a.byKey[e.Key] = e
		}
	}
	return a, nil
}

// add records that pub was shown as alias, and saves the book if that is news.
func (a *chatAuthors) add(pub *ecdsa.PublicKey, alias string, now time.Time) error {
	key := identity.ChatKey(pub)
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, ok := a.byKey[key]; ok && e.Alias == alias {
		return nil
	}
	a.byKey[key] = chatAuthor{Key: key, Alias: alias, Seen: now}
	list := make([]chatAuthor, 0, len(a.byKey))
	for _, e := range a.byKey {
		list = append(list, e)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Seen.After(list[j].Seen) })
	if len(list) > maxChatAuthors {
		for _, e := range list[maxChatAuthors:] {
			delete(a.byKey, e.Key)
		}
		list = list[:maxChatAuthors]
	}
	b, err := json.MarshalIndent(list, "", " ")
	if err != nil {
		return err
	}
	return keyfile.Replace(a.path, b)
}

// resolve returns the keys shown under alias (case and spacing ignored).
func (a *chatAuthors) resolve(alias string) []string {
	want := normalizeAlias(alias)
	a.mu.Lock()
	defer a.mu.Unlock()
	var keys []string
	for k, e := range a.byKey {
		if normalizeAlias(e.Alias) == want {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

func normalizeAlias(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

// resolveTo reads --to: a chat key in any form identity.ParseChatKey reads (0x04…,
// compressed, zQ3…), or the alias of an author in the address book.
func resolveTo(to string, book *chatAuthors) (*ecdsa.PublicKey, error) {
	if pub, err := identity.ParseChatKey(to); err == nil {
		return pub, nil
	}
	switch keys := book.resolve(to); len(keys) {
	case 0:
		return nil, fmt.Errorf("%q is neither a chat key (0x04…, 02…/03…, zQ3…) nor the alias of an author bridge chat has shown (%s)", to, book.path)
	case 1:
		return identity.ParseChatKey(keys[0])
	default:
		return nil, fmt.Errorf("%q names %d authors (%s): give the chat key", to, len(keys), strings.Join(keys, ", "))
	}
}
