package ratchet

import (
	"crypto/ecdsa"

	"github.com/ethereum/go-ethereum/crypto"
)

// X3DH without one-time prekeys (PROTOCOL.md §5.3, status-go x3dh.go): the shared key is
// keccak256 of three Diffie-Hellman outputs, no HKDF. Both sides compute the same value.

// x3dhActive is Alice's side: SK = keccak256(DH(IK_A, SPK_B) ‖ DH(EK_A, IK_B) ‖ DH(EK_A, SPK_B)).
func x3dhActive(myIdentity *ecdsa.PrivateKey, theirPrekey, theirIdentity *ecdsa.PublicKey, ephemeral *ecdsa.PrivateKey) ([]byte, error) {
	return x3dhKey(myIdentity, theirPrekey, ephemeral, theirIdentity, ephemeral, theirPrekey)
}

// x3dhPassive is Bob's side: SK = keccak256(DH(SPK_B, IK_A) ‖ DH(IK_B, EK_A) ‖ DH(SPK_B, EK_A)).
func x3dhPassive(theirIdentity *ecdsa.PublicKey, myPrekey *ecdsa.PrivateKey, theirEphemeral *ecdsa.PublicKey, myIdentity *ecdsa.PrivateKey) ([]byte, error) {
	return x3dhKey(myPrekey, theirIdentity, myIdentity, theirEphemeral, myPrekey, theirEphemeral)
}

func x3dhKey(a1 *ecdsa.PrivateKey, b1 *ecdsa.PublicKey, a2 *ecdsa.PrivateKey, b2 *ecdsa.PublicKey, a3 *ecdsa.PrivateKey, b3 *ecdsa.PublicKey) ([]byte, error) {
	var in [3 * sharedKeyLen]byte
	for i, p := range [3]struct {
		prv *ecdsa.PrivateKey
		pub *ecdsa.PublicKey
	}{{a1, b1}, {a2, b2}, {a3, b3}} {
		k, err := dh(p.prv, p.pub)
		if err != nil {
			return nil, err
		}
		copy(in[i*sharedKeyLen:], k)
	}
	return crypto.Keccak256(in[:]), nil
}
