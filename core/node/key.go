package node

import (
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/keyfile"
)

// LoadOrCreateKey reads the node key from path (64 hex characters, as geth's nodekey
// file), or generates one and writes it with mode 0600 when the file does not exist. A
// key file readable by group or others is refused rather than used, because the node key
// is the node's identity on the network.
func LoadOrCreateKey(path string) (*ecdsa.PrivateKey, error) {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return createKey(path)
	case err != nil:
		return nil, fmt.Errorf("stat node key: %w", err)
	case st.Mode().Perm()&0o077 != 0:
		return nil, fmt.Errorf("node key %s: mode %v is readable by others; chmod 600 it", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read node key: %w", err)
	}
	raw, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("node key %s: not hex: %w", path, err)
	}
	key, err := crypto.ToECDSA(raw)
	if err != nil {
		return nil, fmt.Errorf("node key %s: %w", path, err)
	}
	return key, nil
}

func createKey(path string) (*ecdsa.PrivateKey, error) {
	key, err := crypto.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("generate node key: %w", err)
	}
	// keyfile.Create: 0600, fsynced with its directory, O_EXCL (two processes racing on
	// a fresh data dir must not end up with two keys).
	if err := keyfile.Create(path, []byte(hex.EncodeToString(crypto.FromECDSA(key))+"\n")); err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	return key, nil
}
