# statusgate — the Makefile is the contract (see DEVELOPING.md).
GO        ?= go
# pipefail: `go test -bench … | tee` must fail when a benchmark fails, not report tee's 0.
SHELL       := /bin/bash
.SHELLFLAGS := -o pipefail -c
# An execution count, not a duration: with a duration, Go 1.26's fuzz coordinator can fail
# a clean run with "context deadline exceeded" at the deadline (golang/go#75804, fixed in
# Go 1.27). Durations still work: FUZZTIME=1m make fuzz.
FUZZTIME  ?= 50000x
BENCHTIME ?= 1s
BENCHCOUNT ?= 3
BIN       := bin
REF_BIN   := $(BIN)/whisper-ref
SGO_BIN   := $(BIN)/statusgo-ref

.PHONY: all build run deps test interop bench fuzz lint ref clean generate

all: lint test

build:
	$(GO) build -o $(BIN)/bridge ./cmd/bridge

# Runs the gateway on the embedded config.example.yaml (state under ./data), creating the
# missing key files first (node key, gateway secret, API token), so it works on a fresh
# clone.
run: build
	./$(BIN)/bridge init -keys
	./$(BIN)/bridge run

# What the tests need (Debian packages ngircd and postgresql, gcc, Go modules), installed
# when missing: as root it installs them, otherwise it stops naming the command to run.
deps:
	@bash test/deps.sh

# Every test, race detector on, including the interop suites against the go-ethereum
# v1.9.20 reference and the status-go v0.70.1 reference (each built on first use and
# cached by content hash).
test: deps
	$(GO) test -race -count=1 ./...

# Only the conformance suite against the reference implementation.
interop:
	$(GO) test -count=1 -v ./test/interop/

# The reference binary (a separate Go module pinned to go-ethereum v1.9.20).
ref:
	cd test/reference && GOWORK=off $(GO) build -o ../../$(REF_BIN) .

# The status-go v0.70.1 reference (a separate Go module; test/statusref builds its own
# cached copy for the tests).
statusgo-ref:
	cd test/statusgo && GOWORK=off $(GO) build -o ../../$(SGO_BIN) .

# Our benchmarks and the references' on identical workloads, in one run; prints the
# ours/reference ratios (geth v1.9.20 for Whisper, status-go v0.70.1 for the secure
# transport: core/ratchet's Ratchet_* benchmarks) and writes docs/benchmarks.md. The
# 10-node propagation benchmark runs over real RLPx at a fixed pace (40 messages/s), in
# both forwarding modes, so it runs a fixed 400 messages once: its figures are
# distributions over those messages. test/benchplot (a module of its own, for gonum/plot)
# then draws docs/bench-*.svg from the same run's output and raw samples.
# The gateway benchmarks offer 2,000 msg/s end to end (nodes, SQLite, api connector), so
# they run a fixed 4,000 messages once, and the 10,000-puppet memory figure once. The
# anchor (test/anchor: matterbridge v1.26.0 and our bridge binary, each relaying ngircd
# and its own api) runs 2,000 messages per direction and rate, after test/matterbridge's
# smoke test (build tag anchor: matterbridge's cold build, about 105 s, is cached by
# version in ~/.cache/statusgate; it is not part of make test).
bench: ref statusgo-ref
	@mkdir -p $(BIN) && cat /proc/loadavg > $(BIN)/bench-load.txt
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count $(BENCHCOUNT) ./core/whisper/ ./core/waku/ | tee $(BIN)/bench-ours.txt
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count $(BENCHCOUNT) ./core/chat/ ./identity/ | tee -a $(BIN)/bench-ours.txt
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count $(BENCHCOUNT) ./store/ | tee -a $(BIN)/bench-ours.txt
	rm -rf $(BIN)/samples
	STATUSGATE_BENCH_SAMPLES=$(abspath $(BIN))/samples $(GO) test -run '^$$' -bench . -benchmem -benchtime 400x -count 1 ./test/statusnet/ | tee -a $(BIN)/bench-ours.txt
	$(GO) test -run '^$$' -bench 'Gateway_(StatusToAPI|APIToStatus)' -benchmem -benchtime 4000x -count 1 ./core/gateway/onnode/ | tee -a $(BIN)/bench-ours.txt
	$(GO) test -run '^$$' -bench 'Gateway_Sustained' -benchmem -benchtime 120000x -count 1 -timeout 30m ./core/gateway/onnode/ | tee -a $(BIN)/bench-ours.txt
	$(GO) test -run '^$$' -bench 'Gateway_Puppets10K' -benchmem -benchtime 1x -count 1 ./core/gateway/onnode/ | tee -a $(BIN)/bench-ours.txt
	$(GO) test -run '^$$' -bench 'IRC_' -benchmem -benchtime 2000x -count 1 ./bridges/irc/ | tee -a $(BIN)/bench-ours.txt
	$(GO) test -run '^$$' -bench 'Matrix_' -benchmem -benchtime 500x -count 1 ./bridges/matrix/ | tee -a $(BIN)/bench-ours.txt
	$(GO) test -tags anchor -count=1 -run . ./test/matterbridge/
	$(GO) test -run '^$$' -bench 'Anchor' -benchtime 2000x -count 1 -timeout 30m ./test/anchor/ | tee -a $(BIN)/bench-ours.txt
	$(GO) test -run '^$$' -bench 'Ratchet_' -benchmem -benchtime $(BENCHTIME) -count $(BENCHCOUNT) ./core/ratchet/ | tee -a $(BIN)/bench-ours.txt
	./$(REF_BIN) bench -benchtime $(BENCHTIME) -count $(BENCHCOUNT) | tee $(BIN)/bench-ref.txt
	./$(SGO_BIN) bench -benchtime $(BENCHTIME) -count $(BENCHCOUNT) | tee -a $(BIN)/bench-ref.txt
	cat /proc/loadavg > $(BIN)/bench-load-end.txt
	$(GO) run ./test/benchreport -ours $(BIN)/bench-ours.txt -ref $(BIN)/bench-ref.txt -load $(BIN)/bench-load.txt -load-end $(BIN)/bench-load-end.txt -out docs/benchmarks.md
	cd test/benchplot && GOWORK=off $(GO) run . -ours ../../$(BIN)/bench-ours.txt -ref ../../$(BIN)/bench-ref.txt -samples ../../$(BIN)/samples -out ../../docs

# A short run of every fuzz target (go test -fuzz takes one target at a time).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$t ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd test/reference && GOWORK=off $(GO) vet ./...
	$(GO) vet -tags anchor ./test/matterbridge/
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
	@cd test/reference && GOWORK=off $(GO) mod tidy -diff || { echo "test/reference/go.mod is not tidy: cd test/reference && GOWORK=off go mod tidy"; exit 1; }
	cd test/statusgo && GOWORK=off $(GO) vet ./...
	@cd test/statusgo && GOWORK=off $(GO) mod tidy -diff || { echo "test/statusgo/go.mod is not tidy: cd test/statusgo && GOWORK=off go mod tidy"; exit 1; }
	cd test/benchplot && GOWORK=off $(GO) vet ./...
	@cd test/benchplot && GOWORK=off $(GO) mod tidy -diff || { echo "test/benchplot/go.mod is not tidy: cd test/benchplot && GOWORK=off go mod tidy"; exit 1; }
	$(GO) test -count=1 ./test/archtest/

clean:
	rm -rf $(BIN)

# Regenerates the committed protobuf code (core/chat/protobuf/*.pb.go and
# core/ratchet/protobuf/*.pb.go). protoc-gen-go is installed into ./bin at the version go.mod
# requires for google.golang.org/protobuf, so the generated code and its runtime always
# match; protoc itself comes from the system (the committed files were made by Debian 12's
# protoc 3.21.12).
PROTO_DIRS := core/chat/protobuf core/ratchet/protobuf
generate:
	@command -v protoc >/dev/null || { echo "protoc not found: apt-get install -y protobuf-compiler (Debian/Ubuntu) or brew install protobuf"; exit 1; }
	GOBIN=$(abspath $(BIN)) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	@set -e; for d in $(PROTO_DIRS); do \
	  echo "protoc $$d"; \
	  (cd $$d && PATH="$(abspath $(BIN)):$$PATH" protoc --go_out=. --go_opt=paths=source_relative *.proto); \
	done
