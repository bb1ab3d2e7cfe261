package store

import "fmt"

// Drivers accepted in Config.Driver.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Config selects and locates the database.
type Config struct {
	// Driver is "sqlite" or "postgres". Zero value: "sqlite".
	Driver string `yaml:"driver"`
	// Path is the SQLite database file (created if missing; its directory must exist).
	// Required for sqlite; no default, the caller puts it under its data dir.
	Path string `yaml:"path"`
	// DSN is the PostgreSQL connection string, URL ("postgres://user@host:5432/db") or
	// key=value form, as pgx parses it. Required for postgres; no default.
	DSN string `yaml:"dsn"`
}

func (c Config) withDefaults() Config {
	if c.Driver == "" {
		c.Driver = DriverSQLite
	}
	return c
}

// Validate checks a config after defaults are applied; errors name the dotted key.
func (c Config) Validate() error {
	switch c.Driver {
	case DriverSQLite:
		if c.Path == "" {
			return fmt.Errorf("store.path: empty for driver sqlite: %w", ErrConfig)
		}
	case DriverPostgres:
		if c.DSN == "" {
			return fmt.Errorf("store.dsn: empty for driver postgres: %w", ErrConfig)
		}
	default:
		return fmt.Errorf("store.driver: %q is neither %q nor %q: %w", c.Driver, DriverSQLite, DriverPostgres, ErrConfig)
	}
	return nil
}
