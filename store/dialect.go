package store

import (
	"strconv"
	"strings"
)

// dialect holds what differs between the backends at query time. Queries are written
// once with '?' placeholders and rebound for PostgreSQL ($1, $2, …).
type dialect struct {
	name       string
	dollarArgs bool // PostgreSQL: $n placeholders
	// lockMigrations is run first in the migration transaction to serialize concurrent
	// Opens (SQLite's BEGIN IMMEDIATE already does).
	lockMigrations string
}

var dialects = map[string]dialect{
	DriverSQLite:   {name: DriverSQLite},
	DriverPostgres: {name: DriverPostgres, dollarArgs: true, lockMigrations: "SELECT pg_advisory_xact_lock(7355608001)"},
}

// rebind rewrites '?' placeholders for the dialect. Queries here hold no '?' literals.
func (d dialect) rebind(q string) string {
	if !d.dollarArgs {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
