package discv5

import (
	"bytes"
	"math/bits"
	"slices"
)

const (
	bucketSize = 16 // Kademlia bucket size, and the size of a lookup result
	alpha      = 3  // lookup concurrency
	nBuckets   = 257
)

// table is the Kademlia table of bonded nodes, by log distance of keccak256(ID) to ours.
// Each bucket keeps bucketSize entries, most recently seen first, and as many
// replacements; its total size is bounded by nBuckets·2·bucketSize. It is owned by the
// loop.
type table struct {
	self    [32]byte
	buckets [nBuckets]bucket
	count   int
}

type bucket struct {
	entries      []*nodeRec
	replacements []*nodeRec
}

func logdist(a, b [32]byte) int {
	for i := range a {
		if x := a[i] ^ b[i]; x != 0 {
			return (len(a)-i-1)*8 + bits.Len8(x)
		}
	}
	return 0
}

// distcmp compares the distances a->target and b->target: -1 if a is closer.
func distcmp(target, a, b [32]byte) int {
	for i := range target {
		da, db := a[i]^target[i], b[i]^target[i]
		if da != db {
			if da > db {
				return 1
			}
			return -1
		}
	}
	return 0
}

func (t *table) bucket(r *nodeRec) *bucket { return &t.buckets[logdist(t.self, r.sha)] }

// add inserts or bumps r. When the bucket is full, r becomes a replacement and the least
// recently seen entry is returned for revalidation.
func (t *table) add(r *nodeRec) (revalidate *nodeRec) {
	if r.sha == t.self {
		return nil
	}
	b := t.bucket(r)
	if i := slices.Index(b.entries, r); i >= 0 {
		copy(b.entries[1:i+1], b.entries[:i])
		b.entries[0] = r
		return nil
	}
	if len(b.entries) < bucketSize {
		b.entries = slices.Insert(b.entries, 0, r)
		b.replacements = slices.DeleteFunc(b.replacements, func(x *nodeRec) bool { return x == r })
		r.inTable = true
		t.count++
		return nil
	}
	if !slices.Contains(b.replacements, r) {
		if len(b.replacements) >= bucketSize {
			b.replacements[0].inReplacements = false
			b.replacements = b.replacements[1:]
		}
		b.replacements = append(b.replacements, r)
		r.inReplacements = true
	}
	return b.entries[len(b.entries)-1]
}

// remove deletes r and refills its bucket from the replacements.
func (t *table) remove(r *nodeRec) {
	b := t.bucket(r)
	if i := slices.Index(b.entries, r); i >= 0 {
		b.entries = slices.Delete(b.entries, i, i+1)
		r.inTable = false
		t.count--
		if n := len(b.replacements); n > 0 {
			repl := b.replacements[n-1]
			b.replacements = b.replacements[:n-1]
			repl.inReplacements = false
			b.entries = append(b.entries, repl)
			repl.inTable = true
			t.count++
		}
		return
	}
	if i := slices.Index(b.replacements, r); i >= 0 {
		b.replacements = slices.Delete(b.replacements, i, i+1)
		r.inReplacements = false
	}
}

// closest returns up to n entries nearest to target.
func (t *table) closest(target [32]byte, n int) []*nodeRec {
	var res []*nodeRec
	for i := range t.buckets {
		for _, r := range t.buckets[i].entries {
			res = pushClosest(res, r, target, n)
		}
	}
	return res
}

// pushClosest inserts r into the distance-sorted list, keeping at most n.
func pushClosest(list []*nodeRec, r *nodeRec, target [32]byte, n int) []*nodeRec {
	i, _ := slices.BinarySearchFunc(list, r, func(a, b *nodeRec) int {
		if c := distcmp(target, a.sha, b.sha); c != 0 {
			return c
		}
		return bytes.Compare(a.sha[:], b.sha[:])
	})
	if i >= n {
		return list
	}
	list = slices.Insert(list, i, r)
	if len(list) > n {
		list = list[:n]
	}
	return list
}

// all returns every entry (for stats and revalidation picks).
func (t *table) all() []*nodeRec {
	var res []*nodeRec
	for i := range t.buckets {
		res = append(res, t.buckets[i].entries...)
	}
	return res
}
