package status

import (
	"encoding/binary"
	"testing"

	"github.com/statusgate/statusgate/core/chat"
)

func testID(i int) chat.ID {
	var id chat.ID
	binary.BigEndian.PutUint64(id[:], uint64(i)+1)
	return id
}

// A chat's dedupe window and twin index cost nothing until messages arrive, grow to
// their bound n and no further, and then forget the oldest id first.
func TestDedupeGrowsToItsBound(t *testing.T) {
	const n = 1000
	d, tw := newDedupe(n), newTwinIndex(n)
	if cap(d.ring) != 0 || cap(tw.ring) != 0 {
		t.Fatalf("fresh window holds %d and %d slots, want none", cap(d.ring), cap(tw.ring))
	}
	for i := range n + 10 {
		if !d.add(testID(i)) {
			t.Fatalf("id %d taken for a duplicate", i)
		}
		tw.put(testID(i), testID(-i-2))
		if d.add(testID(i)) {
			t.Fatalf("id %d not recognised again", i)
		}
	}
	if len(d.ring) != n || cap(d.ring) != n || len(d.set) != n || len(tw.ring) != n || cap(tw.ring) != n || len(tw.m) != n {
		t.Fatalf("dedupe ring %d (cap %d) set %d; twins ring %d (cap %d) map %d; want %d each",
			len(d.ring), cap(d.ring), len(d.set), len(tw.ring), cap(tw.ring), len(tw.m), n)
	}
	for i := range 10 { // the oldest went
		if _, ok := d.set[testID(i)]; ok {
			t.Fatalf("id %d still remembered past the window", i)
		}
		if _, ok := tw.m[testID(i)]; ok {
			t.Fatalf("twin of id %d still indexed past the window", i)
		}
	}
	if !d.add(testID(0)) { // forgotten, so new again; it evicts the oldest left (10)
		t.Fatal("an id past the window was taken for a duplicate")
	}
	if _, ok := d.set[testID(10)]; ok {
		t.Fatal("the oldest id was not evicted")
	}
	if twin, ok := tw.m[testID(n+9)]; !ok || twin != testID(-(n+9)-2) {
		t.Fatal("the newest twin is not indexed")
	}
}
