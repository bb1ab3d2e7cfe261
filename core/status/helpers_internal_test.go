package status

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/statusgate/statusgate/store"
)

// tempStore opens a fresh SQLite store in the test's temporary directory, closed when
// the test ends (the package-internal twin of history_test.go's openStore).
func tempStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{Driver: store.DriverSQLite, Path: filepath.Join(t.TempDir(), "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
