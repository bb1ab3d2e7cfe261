package mailserver

import (
	"context"
	"time"

	"github.com/statusgate/statusgate/core/whisper"
)

// CursorLength is the size of a cursor: BE uint32 created time ‖ envelope hash (§4.5),
// the first 36 bytes of status-go's archive key. Both status-go v0.70.1 backends and
// ours issue and accept cursors of this form.
const CursorLength = 36

// dbKeyLength is a whole status-go archive key: the cursor and the topic (db_key.go).
// Its legacy binary request form carries one as a cursor.
const dbKeyLength = CursorLength + whisper.TopicLength

// Record is one archived envelope.
type Record struct {
	Created  uint32        // Expiry − TTL, Unix seconds
	Hash     [32]byte      // envelope hash
	Topic    whisper.Topic // envelope topic
	Envelope []byte        // the envelope's RLP, as received
}

// Query selects archived envelopes for a history request.
type Query struct {
	Lower, Upper uint32        // created time bounds, both inclusive
	Bloom        whisper.Bloom // only envelopes whose topic's bloom it matches
	// Topics, when not empty, selects envelopes of exactly these topics (distinct), and
	// Bloom is ignored.
	Topics []whisper.Topic
	Limit  int // at most this many envelopes (> 0)
	// MaxBytes, when > 0, bounds the envelope bytes returned: the answer ends before the
	// envelope that would take it past MaxBytes, with a cursor, but holds at least one.
	MaxBytes int
	// Cursor, when set (CursorLength bytes), resumes after the envelope it names.
	Cursor []byte
}

// Archive stores envelopes for history requests. Implementations must be safe for
// concurrent use; the store package provides SQLite and PostgreSQL ones.
type Archive interface {
	// Put stores the records; a record whose hash is already stored is skipped, so
	// redelivery never duplicates.
	Put(ctx context.Context, recs []Record) error
	// Query returns the matching envelopes in ascending (Created, Hash) order, at most
	// q.Limit of them and at most q.MaxBytes of them, and the cursor to resume from:
	// empty when there is nothing more, else the CursorLength-byte key of the last
	// envelope returned.
	Query(ctx context.Context, q Query) (envelopes [][]byte, next []byte, err error)
	// Newest returns the created time of the newest archived envelope; ok is false when
	// the archive is empty.
	Newest(ctx context.Context) (created uint32, ok bool, err error)
	// Prune deletes the envelopes created before t and reports how many.
	Prune(ctx context.Context, before time.Time) (int64, error)
	// PruneBytes deletes the oldest envelopes, in (Created, Hash) order, until those
	// kept hold at most maxBytes bytes, and reports how many it deleted.
	PruneBytes(ctx context.Context, maxBytes int64) (int64, error)
}

// Checkpointer is an Archive whose commits become durable lazily (store's SQLite
// archive: the WAL at synchronous NORMAL): Checkpoint makes everything committed so far
// durable. Server.Run calls it every ServerConfig.CheckpointInterval from a goroutine of
// its own, beside the writer, and once more after the last flush; on power loss such an
// archive loses at most what was committed since the last Checkpoint (a process crash
// loses nothing committed).
type Checkpointer interface {
	Checkpoint(ctx context.Context) error
}

// RecordOf builds the archive record of an envelope.
func RecordOf(env *whisper.Envelope) Record {
	return Record{Created: env.Sent(), Hash: env.Hash(), Topic: env.Topic(), Envelope: env.Bytes()}
}

// CursorOf is the cursor naming a record (BE created ‖ hash).
func CursorOf(created uint32, hash [32]byte) []byte {
	c := make([]byte, CursorLength)
	c[0], c[1], c[2], c[3] = byte(created>>24), byte(created>>16), byte(created>>8), byte(created)
	copy(c[4:], hash[:])
	return c
}
