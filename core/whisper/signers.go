package whisper

import (
	"crypto/ecdsa"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/common/lru"
	"github.com/ethereum/go-ethereum/crypto"
)

// SignerCacheSize is how many signatures a Service's Signers remembers (about 400 bytes
// each: 1.6 MiB when full). Eviction policy: least recently used first. Enough for the
// echoes of what the node posts itself (opened again within milliseconds) and for the
// overlap of a mailserver catch-up with what arrived live (a few thousand messages).
const SignerCacheSize = 4096

// Signers recovers the public keys behind secp256k1 signatures (65 bytes R ‖ S ‖ V over
// a 32-byte digest, V ∈ {0, 1}) and remembers the answers, so that the same signature
// over the same digest is recovered once: an envelope that arrives again (a mailserver
// replaying what came live), our own post opened by our own subscription, the
// ApplicationMetadataMessage signature of a message opened twice.
//
// It weakens nothing: an entry is keyed by the exact digest and signature bytes and
// holds what recovering them returned, or, for a signature made by Sign, the key that
// made it, which is what recovery returns for it. A signature that does not recover is
// not remembered (it costs a recovery every time, as before). Remote input fills it at
// most to SignerCacheSize. Safe for concurrent use; a nil *Signers recovers every time
// and remembers nothing.
type Signers struct {
	cache                     *lru.Cache[sigKey, *ecdsa.PublicKey]
	recovered, reused, signed atomic.Uint64
}

type sigKey struct {
	digest [32]byte
	sig    [signatureLength]byte
}

// NewSigners returns a cache of size entries (SignerCacheSize when size ≤ 0).
func NewSigners(size int) *Signers {
	if size <= 0 {
		size = SignerCacheSize
	}
	return &Signers{cache: lru.NewCache[sigKey, *ecdsa.PublicKey](size)}
}

// SignerStats counts a Signers' work.
type SignerStats struct {
	// Recovered counts signer recoveries done (libsecp256k1), failed ones included.
	Recovered uint64
	// Reused counts recoveries answered from the cache instead.
	Reused uint64
	// Signed counts signatures made through Sign.
	Signed uint64
}

// Stats returns the counters; zero for a nil Signers.
func (s *Signers) Stats() SignerStats {
	if s == nil {
		return SignerStats{}
	}
	return SignerStats{Recovered: s.recovered.Load(), Reused: s.reused.Load(), Signed: s.signed.Load()}
}

// Recover returns the key whose signature over digest (32 bytes) is sig (65 bytes):
// crypto.SigToPub, remembered. The returned key is shared: treat it as read-only.
func (s *Signers) Recover(digest, sig []byte) (*ecdsa.PublicKey, error) {
	if s == nil || len(digest) != 32 || len(sig) != signatureLength {
		if s != nil {
			s.recovered.Add(1)
		}
		return crypto.SigToPub(digest, sig)
	}
	var k sigKey
	copy(k.digest[:], digest)
	copy(k.sig[:], sig)
	if pub, ok := s.cache.Get(k); ok {
		s.reused.Add(1)
		return pub, nil
	}
	s.recovered.Add(1)
	pub, err := crypto.SigToPub(digest, sig)
	if err != nil {
		return nil, err
	}
	s.cache.Add(k, pub)
	return pub, nil
}

// Sign signs digest (32 bytes) with key (crypto.Sign) and remembers the signature as
// key's, so that opening it through s again recovers nothing. Use it where the
// signature will be read back by this process (our own posts, which our own
// subscriptions open).
func (s *Signers) Sign(digest []byte, key *ecdsa.PrivateKey) ([]byte, error) {
	sig, err := crypto.Sign(digest, key)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return sig, nil
	}
	s.signed.Add(1)
	var k sigKey // crypto.Sign took only a 32-byte digest and made 65 bytes
	copy(k.digest[:], digest)
	copy(k.sig[:], sig)
	pub := key.PublicKey // a copy: the cache never shares the caller's private key
	s.cache.Add(k, &pub)
	return sig, nil
}
