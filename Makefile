# sluice — build, test and install-what-is-missing targets (GNU make).
# `make run` and `make test` are the two commands a newcomer needs; both
# install only what is missing, so repeated runs are fast and work offline.

MUSL_TARGET := x86_64-unknown-linux-musl
STATIC_BIN  := target/$(MUSL_TARGET)/release/sluice
CONFIG      := config.example.toml

# Root needs no sudo; anyone else does. rustup installs cargo under ~/.cargo/bin.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
export PATH := $(HOME)/.cargo/bin:$(PATH)

# One `apt-get update`, then a non-interactive install of the packages given.
APT_INSTALL = $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends

.PHONY: deps deps-rust deps-test deps-musl build release run check-config \
	test fmt clippy static small size fuzz bench

## Dependencies -------------------------------------------------------------

deps: deps-rust deps-test deps-musl

# What building and testing need: a C linker, a Rust toolchain (rustup), rustfmt, clippy.
# The toolchain itself comes with the machine; we only add components.
deps-rust:
	@command -v cc >/dev/null || { echo "installing: gcc libc6-dev"; $(APT_INSTALL) gcc libc6-dev; }
	@command -v rustup >/dev/null || { echo "error: no rustup on PATH; install a Rust toolchain first" >&2; exit 1; }
	@for c in rustfmt clippy; do \
	  rustup component list --installed | grep -q "^$$c" || rustup component add $$c || exit 1; \
	done

# What the interop tests drive through sluice: real TLS clients and servers (openssl, curl),
# a real OpenSSH client and server, a QUIC peer (python aioquic, from PyPI) and a WebSocket
# client (python websockets, from PyPI).
TEST_TOOLS := openssl:openssl curl:curl ssh:openssh-client /usr/sbin/sshd:openssh-server python3:python3
deps-test:
	@pkgs=""; for t in $(TEST_TOOLS); do \
	  cmd=$${t%%:*}; pkg=$${t#*:}; \
	  command -v $$cmd >/dev/null 2>&1 || [ -x "$$cmd" ] || pkgs="$$pkgs $$pkg"; \
	done; \
	if [ -n "$$pkgs" ]; then echo "installing:$$pkgs"; $(APT_INSTALL) $$pkgs; fi
	@python3 -c 'import aioquic' 2>/dev/null || python3 -m pip install --quiet aioquic
	@python3 -c 'import websockets' 2>/dev/null || python3 -m pip install --quiet websockets

# What the static build needs: the musl Rust target and a musl C compiler
# (ring compiles C code).
deps-musl: deps-rust
	@rustup target list --installed | grep -qx $(MUSL_TARGET) || \
	  rustup target add $(MUSL_TARGET)
	@command -v x86_64-linux-musl-gcc >/dev/null || command -v musl-gcc >/dev/null || \
	  { $(APT_INSTALL) musl-tools; }

## Builds -------------------------------------------------------------------

build: deps-rust
	cargo build

release: deps-rust
	cargo build --release

run: release
	./target/release/sluice -c $(CONFIG)

check-config: release
	./target/release/sluice --check -c $(CONFIG)

# Static musl binaries: `static` is the speed-first release build, `small` the size-first
# one (opt-level "z") for routers with little flash. Each fails unless ldd confirms there is
# nothing to load and the binary checks the example config (it runs our own memcpy), and
# prints its size.
MUSL_CC = CC_x86_64_unknown_linux_musl="$$(command -v x86_64-linux-musl-gcc || command -v musl-gcc)"
define check_static
	@out="$$(ldd $(1) 2>&1 || true)"; echo "ldd $(1):"; echo "$$out"; \
	echo "$$out" | grep -Eq 'not a dynamic executable|statically linked' || \
	  { echo "error: $(1) is not static" >&2; exit 1; }
	@b=$$(stat -c %s $(1)); \
	echo "$(1): $$b bytes, $$(awk "BEGIN { printf \"%.2f\", $$b / 1048576 }") MiB"
	@$(1) --check -c $(CONFIG) >/dev/null || \
	  { echo "error: $(1) could not check $(CONFIG): a broken build? (e.g. src/sys/mem.rs)" >&2; exit 1; }
endef

static: deps-musl
	$(MUSL_CC) cargo build --release --target $(MUSL_TARGET)
	$(call check_static,$(STATIC_BIN))

SMALL_BIN := target/$(MUSL_TARGET)/small/sluice
small: deps-musl
	$(MUSL_CC) cargo build --profile small --target $(MUSL_TARGET)
	$(call check_static,$(SMALL_BIN))

size: static

## Checks -------------------------------------------------------------------

# Everything CI runs (.ci/run calls exactly this): formatting, lints, and all
# unit + integration tests.
test: deps-rust deps-test
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo test

fmt: deps-rust
	cargo fmt

clippy: deps-rust
	cargo clippy --all-targets -- -D warnings

# Run every fuzz target for FUZZ_SECONDS each (nightly + cargo-fuzz, installed if missing).
# New inputs land in fuzz/corpus/<target>/; commit the interesting ones: `cargo test`
# replays that corpus.
FUZZ_SECONDS ?= 30
fuzz: deps-rust
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	@for t in $$(cargo +nightly fuzz list); do \
	  echo "== fuzz $$t ($(FUZZ_SECONDS)s)"; \
	  cargo +nightly fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

## Benchmarks -----------------------------------------------------------------

# Side-by-side benchmark of sluice and its peers (nginx, haproxy, sslh, caddy) on loopback:
# installs what it needs from Debian, prints a markdown report and writes bench/RESULTS.md.
# BENCH_QUICK=1 for a ~2-minute check (writes bench/RESULTS.quick.md); other knobs
# (BENCH_RUNS, BENCH_SECONDS, BENCH_SCENARIOS, ...) are listed at the top of bench/run.sh.
bench: static small
	bench/run.sh
