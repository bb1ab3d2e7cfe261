package store

import (
	"testing"

	"github.com/statusgate/statusgate/test/pgtest"
)

// TestMain stops the PostgreSQL cluster pgtest starts for this binary.
func TestMain(m *testing.M) { pgtest.Main(m) }
