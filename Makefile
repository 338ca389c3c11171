# Decision Ledger: the two commands a new user needs are `make run` and `make test`.
# Everything builds in one cargo profile (dev, with optimised dependencies), so
# RocksDB's C++ is compiled once for run, test and bench.

CARGO ?= cargo
DATA ?= ./data
LISTEN ?= 127.0.0.1:8700
ORIGIN ?= decisions.localhost/log
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SHELL := /bin/bash

.PHONY: all deps build test run bench lint fmt clean-data

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

# Start ledgerd on $(LISTEN) with its data (RocksDB + generated key) in $(DATA).
run: deps
	$(CARGO) build -p api --bin ledgerd
	$(CARGO) run -q -p api --bin ledgerd -- --data $(DATA) --listen $(LISTEN) --origin $(ORIGIN)

# Criterion benchmarks (not part of `make test`), in the same profile as the
# build so RocksDB is not compiled again. Figures go in docs/performance.md.
bench: deps
	$(CARGO) bench --profile dev -p ledger

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all
