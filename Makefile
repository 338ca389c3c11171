# Decision Ledger: the two commands a new user needs are `make run` and `make test`.
# Everything builds in one cargo profile (dev, with optimised dependencies), so
# RocksDB's C++ is compiled once for run, test and bench.

CARGO ?= cargo
DATA ?= ./data
LISTEN ?= 127.0.0.1:8700
ORIGIN ?= decisions.localhost/log
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SHELL := /bin/bash

.PHONY: all deps build test run bench fuzz lint fmt clean-data

all: build

# Install what a fresh Debian machine lacks: libclang for RocksDB's bindgen, a
# C++ compiler for RocksDB and a C compiler for mimalloc. Rust (cargo) must
# already be there.
deps:
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs)"; exit 1; }
	@missing=""; \
	ls /usr/lib/llvm-*/lib/libclang.so >/dev/null 2>&1 || ls /usr/lib/*/libclang.so >/dev/null 2>&1 || missing="$$missing libclang-dev"; \
	command -v c++ >/dev/null || missing="$$missing g++"; \
	command -v cc >/dev/null || missing="$$missing gcc"; \
	command -v make >/dev/null || missing="$$missing make"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

build: deps
	$(CARGO) build --workspace --all-targets

# Every test: unit, property, vector, mutation and end-to-end tests (the e2e
# tests run the binaries that `cargo test --workspace` builds).
test: build
	set -o pipefail; $(CARGO) test --workspace --no-fail-fast 2>&1 | tee target/test.log
	@awk '/^test result:/ {p += $$4; f += $$6} END {printf "tests: %d passed, %d failed\n", p, f}' target/test.log

# Start ledgerd on $(LISTEN) with its data (RocksDB + generated key) in $(DATA);
# ledgerctl and ledger-verify are built beside it for the commands it prints.
run: deps
	$(CARGO) build -p api --bin ledgerd -p tools --bin ledgerctl -p verifier --bin ledger-verify
	$(CARGO) run -q -p api --bin ledgerd -- --data $(DATA) --listen $(LISTEN) --origin $(ORIGIN)

# Criterion benchmarks (not part of `make test`), in the same profile as the
# build so RocksDB is not compiled again. Figures go in docs/performance.md.
bench: deps
	$(CARGO) bench --profile dev -p ledger

# Coverage-guided fuzzing of every parser (fuzz/src/lib.rs), FUZZ_SECONDS
# each: cargo-fuzz with libFuzzer on the stable toolchain (no sanitizer; a
# panic is the failure). New inputs go to target/fuzz-corpus/<target>; a
# crash to fuzz/libfuzzer/artifacts/<target>/ and fails the run. The first
# run compiles RocksDB again with the fuzzer's flags (~15 min). `make test`
# runs the same targets briefly without instrumentation (fuzz/tests/smoke.rs).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := $(basename $(notdir $(wildcard fuzz/libfuzzer/fuzz_targets/*.rs)))
fuzz: deps
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p target/fuzz-corpus/$$t; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s (log: target/fuzz-$$t.log)"; \
	  $(CARGO) fuzz run --fuzz-dir fuzz/libfuzzer -s none -O $$t target/fuzz-corpus/$$t fuzz/corpus/$$t \
	    -- -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 > target/fuzz-$$t.log 2>&1 \
	    || { tail -40 target/fuzz-$$t.log; exit 1; }; \
	  grep -E "^Done|stat::number_of_executed_units|stat::peak_rss" target/fuzz-$$t.log; \
	done

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps -q
	@if command -v promtool >/dev/null; then \
	  promtool check rules examples/alerts.yaml && promtool test rules examples/alerts.test.yaml; \
	else echo "lint: promtool not installed; examples/alerts.yaml not checked (apt-get install prometheus)"; fi

fmt:
	$(CARGO) fmt --all
