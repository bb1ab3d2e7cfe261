package whisper

import (
	"crypto/ecdsa"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
)

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// fixedRand is a deterministic, never-all-zero byte stream for reproducible tests.
type fixedRand byte

func (r fixedRand) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r) + byte(i*31) + 1
	}
	return len(p), nil
}

// zeroRand simulates a broken entropy source.
type zeroRand struct{}

func (zeroRand) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func keyOf(t testing.TB, seed string) *ecdsa.PrivateKey {
	t.Helper()
	k, err := crypto.ToECDSA(crypto.Keccak256([]byte(seed)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// symKeys holds the keys symKeyOf derived, by password, for the life of the test
// binary: a SymKey is immutable and safe to share.
var symKeys sync.Map

// symKeyOf is the key of password, derived once per test binary. PBKDF2 is slow under
// -race (2-12 s each at load 15-20), and tests call this between reading the clock for
// an envelope's sent time and sending it (testEnvelope(…, time.Now())): derived every
// time, a 15 s envelope could expire before it was sent.
func symKeyOf(t testing.TB, password string) *SymKey {
	t.Helper()
	if k, ok := symKeys.Load(password); ok {
		return k.(*SymKey)
	}
	k, err := SymKeyFromPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	symKeys.Store(password, k)
	return k
}

// frozen is a clock that stands still, for tests that need a fixed Expiry.
func frozen(unix int64) func() time.Time { return func() time.Time { return time.Unix(unix, 0) } }
