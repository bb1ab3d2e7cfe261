#!/usr/bin/env bash
# Installs what the tests need when it is missing; the one place that knows. `make test`
# and `.ci/run` both call it, so a fresh Debian machine with only Go and gcc passes
# `make test` (run as root; otherwise this stops with the one command to run).
#
#   Debian packages   ngircd      /usr/sbin/ngircd                  test/ircd (bridges/irc)
#                     postgresql  /usr/lib/postgresql/15/bin/initdb test/pgtest (store, gateway)
#                     gcc         gcc on PATH                       cgo: go-sqlite3, -race
#                     strace      strace on PATH                    test/e2e (key files fsynced)
#   Go modules        go.mod, test/reference/go.mod (the go-ethereum v1.9.20 reference),
#                     test/statusgo/go.mod (the status-go v0.70.1 reference) and
#                     test/benchplot/go.mod (make bench's plots)
#
# Built on first use by the harnesses themselves and cached outside the repository
# (~/.cache/statusgate): the whisper-ref binary (test/interop), the statusgo-ref binary
# (test/statusref) and Dendrite (test/homeserver). A test never skips because one is
# missing: it fails saying which.
set -euo pipefail
cd "$(dirname "$0")/.."

pg_bin="${PGTEST_BIN:-/usr/lib/postgresql/15/bin}"
missing=()
[ -x /usr/sbin/ngircd ] || missing+=(ngircd)
[ -x "$pg_bin/initdb" ] && [ -x "$pg_bin/postgres" ] || missing+=(postgresql)
command -v gcc >/dev/null || missing+=(gcc)
command -v strace >/dev/null || missing+=(strace)

if [ ${#missing[@]} -gt 0 ]; then
  cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "test/deps.sh: the tests need Debian packages that are missing: ${missing[*]}." >&2
    echo "Install them as root, then run make test again:  sudo sh -c '$cmd'" >&2
    exit 1
  fi
  echo "test/deps.sh: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # Another Debian release ships another PostgreSQL major: say so rather than fail later.
  [ -x "$pg_bin/initdb" ] || { echo "test/deps.sh: postgresql installed no $pg_bin/initdb; set PGTEST_BIN to the directory holding initdb and postgres" >&2; exit 1; }
fi

go mod download
(cd test/reference && GOWORK=off go mod download)
(cd test/statusgo && GOWORK=off go mod download)
(cd test/benchplot && GOWORK=off go mod download)
