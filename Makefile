# Pyralog developer entry points. On a fresh Debian machine with Rust, `make testnet` and
# `make test` install what is missing (Debian packages via apt, cargo-nextest via cargo), build
# once, and run.
#
# Builds go to a target directory outside the clone so CI runs on fresh clones reuse them.

SHELL := /bin/bash
.DEFAULT_GOAL := help

export CARGO_TARGET_DIR ?= $(HOME)/.cache/pyralog/target
CARGO ?= cargo
# Tools the tests run beside our code (the rosenpass binary), outside the clone like the target.
TOOLS := $(HOME)/.cache/pyralog/tools
ROSENPASS := $(TOOLS)/bin/rosenpass
# AssemblyScript's compiler, for the contract example in contracts/examples/assemblyscript
# (contracts/tests/assemblyscript.rs finds it here, or skips saying why).
ASSEMBLYSCRIPT_VERSION := 0.28.20
ASC := $(TOOLS)/npm/node_modules/.bin/asc
# CometBFT, the peer of the ABCI interop tests (node/tests/node/cometbft.rs finds it here, or
# skips saying why): built with `go install` where Go is present.
COMETBFT_VERSION := v0.38.26
COMETBFT := $(TOOLS)/bin/cometbft

# Debian packages the build needs: mold (linker, see .cargo/config.toml), clang + libclang-dev
# (bindgen for RocksDB in the cluster engine); curl + jq drive the local testnet's RPC calls;
# protobuf-compiler (protoc) builds the load generator's etcd client, and etcd-server is the
# peer it is measured against (its smoke test and `make bench-etcd`); cmake, pkg-config and
# libsodium-dev build Rosenpass (liboqs); kcat (librdkafka) is the Kafka client the tests and the
# testnet speak to the Kafka listener with, librdkafka-dev the library the testnet workspace's
# Kafka interop tests link (rdkafka crate); wireguard-go, wireguard-tools, socat and iproute2 run
# the tunnel interop tests (wireguard-go on a TUN device in a network namespace, as root);
# nftables (partitions, packet loss, latency redirects), faketime (libfaketime: clock skew) and
# conntrack (moving live flows onto the delay relay) are the chaos harness's faults; prometheus
# brings promtool, which lints the node's /metrics in the tests, and the server the Grafana
# dashboard's queries run in; chromium is the browser the node's page is tested in.
APT_PACKAGES := mold clang libclang-dev curl jq protobuf-compiler etcd-server cmake pkg-config libsodium-dev wireguard-go wireguard-tools socat iproute2 kcat librdkafka-dev nftables faketime conntrack prometheus chromium
# Apache Kafka's broker and tools (jars from Maven Central, testnet/kafka/pom.xml): the Kafka
# interop tests and `make bench-kafka` run them where Java and Maven are installed.
KAFKA_VERSION := 4.1.1
export PYRALOG_KAFKA_LIBS ?= $(HOME)/.cache/pyralog/kafka-$(KAFKA_VERSION)/libs
# The load generator (testnet/) is its own workspace; see testnet/Cargo.toml.
LOADGEN := --manifest-path testnet/Cargo.toml
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help deps kafka-jars npm-deps ui build lint test testnet chaos fuzz fuzz-long bench bench-kafka profile-write-path bench-cluster bench-etcd bench-consensus bench-tunnel bench-chain bench-zk bench-contracts clean

help:
	@echo "make testnet  install what is missing, build, run the local testnet (ENGINE=pbft: on PBFT; ENGINE=pos: Proof-of-Stake; ENGINE=pow: Proof-of-Work)"
	@echo "make test     install what is missing, lint, run every test"
	@echo "make bench    run the crypto benchmarks (release profile; not part of make test)"
	@echo "make bench-cluster  run the 3-replica replication benchmark"
	@echo "make bench-etcd     Pyralog (JSON-RPC and Kafka protocol) and etcd side by side (3 nodes each, loopback)"
	@echo "make bench-kafka    Pyralog and Apache Kafka 4 side by side with kafka-producer-perf-test (needs Java)"
	@echo "make profile-write-path  perf profile of the nodes under bench-etcd's load (folded stacks)"
	@echo "make bench-consensus  Tendermint over libp2p: 4 and 7 validators, empty and 1,000 tx/s"
	@echo "make bench-tunnel  WireGuard+smoltcp stream throughput and latency vs loopback TCP; Rosenpass handshake"
	@echo "make bench-chain  light-client verification cost; anchoring lag on the 2x3 testnet"
	@echo "make bench-contracts  constraint contracts on the append path (with and without, same run); chain contract calls"
	@echo "make bench-zk     Poseidon and Rescue tree appends; Groth16 membership at depths 16, 20, 32; append STARKs, k = 64, 1024, 16384"
	@echo "make chaos    CHAOS_SEEDS (24) fault schedules against real nodes in network namespaces (root)"
	@echo "make fuzz     every fuzz target under libFuzzer for FUZZ_SECONDS (60; make fuzz-long: 600)"
	@echo "make deps     only install missing Debian packages and cargo-nextest"
	@echo "make ui       rebuild the node's page (node/ui/dist/app.js, embedded in the binary) after editing node/ui/src"
	@echo "target dir:   $(CARGO_TARGET_DIR)"

deps:
	@missing=""; \
	for pkg in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$pkg" 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@$(CARGO) nextest --version >/dev/null 2>&1 || { echo "deps: installing cargo-nextest"; $(CARGO) install --locked cargo-nextest; }
	@test -x "$(ROSENPASS)" || { echo "deps: installing the rosenpass 0.2.3 binary (tunnel interop tests)"; \
	  $(CARGO) install --locked rosenpass --version 0.2.3 --root "$(TOOLS)"; }
	@if command -v npm >/dev/null; then \
	  test -x "$(ASC)" || { echo "deps: installing AssemblyScript $(ASSEMBLYSCRIPT_VERSION) (contract examples) into $(TOOLS)/npm"; \
	    npm install --no-audit --no-fund --silent --prefix "$(TOOLS)/npm" assemblyscript@$(ASSEMBLYSCRIPT_VERSION); }; \
	else echo "deps: no npm here: the AssemblyScript contract example is skipped"; fi
	@if command -v go >/dev/null; then \
	  test -x "$(COMETBFT)" || { echo "deps: installing CometBFT $(COMETBFT_VERSION) (ABCI interop tests) into $(TOOLS)/bin"; \
	    GOBIN="$(TOOLS)/bin" go install github.com/cometbft/cometbft/cmd/cometbft@$(COMETBFT_VERSION) \
	      || echo "deps: CometBFT $(COMETBFT_VERSION) could not be installed: its interop tests skip"; }; \
	else echo "deps: no Go here: the CometBFT interop tests are skipped"; fi

# The npm packages, each from its lock into its node_modules: the node's page (node/ui: the light
# client's @noble primitives, esbuild, TypeScript, playwright-core for the browser test) and the
# zk proofs' interop peer (zk/interop: snarkjs).
UI := node/ui
NPM_PACKAGES := $(UI) zk/interop
npm-deps:
	@if command -v npm >/dev/null; then \
	  for dir in $(NPM_PACKAGES); do \
	    if [ ! -d $$dir/node_modules ] || [ $$dir/package-lock.json -nt $$dir/node_modules/.package-lock.json ]; then \
	      echo "npm-deps: installing $$dir's npm packages"; npm ci --prefix $$dir --no-audit --no-fund --silent || exit 1; fi; \
	  done; \
	else echo "npm-deps: no npm here: the TypeScript light client's tests, the browser test and snarkjs interop are skipped"; fi

# Rebuilds the page's script bundle, which the node embeds: commit node/ui/dist/app.js with the
# sources (make lint fails when they disagree).
ui: npm-deps
	cd $(UI) && node build.mjs

# Kafka's jars, fetched once into the cache; skipped (the tests then say why) without Java or Maven.
kafka-jars:
	@if [ -f "$(PYRALOG_KAFKA_LIBS)/kafka_2.13-$(KAFKA_VERSION).jar" ]; then :; \
	elif command -v java >/dev/null && command -v mvn >/dev/null; then \
	  echo "kafka-jars: fetching Apache Kafka $(KAFKA_VERSION) with Maven into $(PYRALOG_KAFKA_LIBS)"; \
	  mvn -B -q -f testnet/kafka/pom.xml -Dkafka.version=$(KAFKA_VERSION) \
	    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
	    -DincludeScope=runtime -DoutputDirectory="$(PYRALOG_KAFKA_LIBS)"; \
	else echo "kafka-jars: no Java or Maven here; Apache Kafka's tools and broker are skipped"; fi

# One feature set for every build: the tests' (dev-dependencies turn on the consensus crate's
# `test-utils`), so `make testnet`, `make test` and the benchmarks share one build.
BUILD := $(CARGO) build --locked --workspace --tests

build: deps
	$(BUILD)

# Crates a light client embeds must not pull an async runtime, a storage engine or a network stack.
LIGHT_CRATES := pyralog-crypto pyralog-zk pyralog-record pyralog-consensus-types pyralog-chain pyralog-light
FORBIDDEN_DEPS := tokio|rocksdb|librocksdb-sys|libp2p

# The fuzz targets' checks (fuzz/harness, a member of the main workspace): built on the stable
# toolchain without libFuzzer, so `make test` replays the kept corpora and regressions through
# the code the fuzzer runs.
FUZZ_TARGETS := chain_tx block_header consensus_info finality_proof evidence state_proof checkpoint record genesis_json \
  tendermint_wire pbft_wire consensus_wal cluster_frame p2p_frame zk_proof light_answer kafka_request kafka_batch config_toml \
  tunnel_datagram arrow_ipc rpc_params structured abci_frame
FUZZ_SECONDS ?= 60
CARGO_FUZZ := $(TOOLS)/bin/cargo-fuzz

lint: deps npm-deps
	@if [ -d $(UI)/node_modules ]; then cd $(UI) && npm run --silent check && node build.mjs --check; \
	else echo "lint: node/ui's TypeScript not checked (no npm packages)"; fi
	$(CARGO) fmt --all -- --check
	$(CARGO) fmt $(LOADGEN) -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	$(CARGO) clippy --locked $(LOADGEN) --all-targets -- -D warnings
	@for crate in $(LIGHT_CRATES); do \
	  bad=$$($(CARGO) tree --locked -p $$crate -e normal,build --prefix none | grep -E '^($(FORBIDDEN_DEPS))[ -]' || true); \
	  if [ -n "$$bad" ]; then echo "layering: $$crate depends on:"; echo "$$bad"; exit 1; fi; \
	  echo "layering: $$crate has no $(FORBIDDEN_DEPS) dependency"; \
	done

# The testnet workspace's tests (load generator smoke runs, librdkafka interop) run the pyralog
# binary the first run builds.
test: lint kafka-jars
	@if [ -d $(UI)/node_modules ]; then echo "node/ui: the TypeScript light client against the shared vectors"; cd $(UI) && npm test --silent; \
	else echo "test: node/ui's TypeScript tests skipped (no npm packages)"; fi
	$(CARGO) nextest run --locked --workspace
	PYRALOG_BIN="$(CARGO_TARGET_DIR)/debug/pyralog" $(CARGO) nextest run --locked $(LOADGEN)

# Each fuzz target under libFuzzer for FUZZ_SECONDS (cargo-fuzz into the cache when missing; the
# stable toolchain with RUSTC_BOOTSTRAP=1 for the sanitizer flags; its own target directory).
# New corpus entries land in fuzz/corpus/<target>, minimised after each run (`cargo fuzz cmin`);
# a crash in fuzz/libfuzzer/artifacts/<target>: fix it and keep the input under
# fuzz/regressions/<target>. The libFuzzer crate is fuzz/libfuzzer (cargo fuzz --fuzz-dir).
fuzz: deps
	@[ -x "$(CARGO_FUZZ)" ] || { echo "fuzz: installing cargo-fuzz into $(TOOLS)"; \
	  $(CARGO) install --locked cargo-fuzz --root "$(TOOLS)"; }
	@mkdir -p "$(HOME)/.cache/pyralog/fuzz-target"
	@for target in $(FUZZ_TARGETS); do \
	  log="$(HOME)/.cache/pyralog/fuzz-target/$$target.log"; mkdir -p fuzz/corpus/$$target; \
	  echo "fuzz: $$target for $(FUZZ_SECONDS) s (log $$log)"; \
	  if ! RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$(HOME)/.cache/pyralog/fuzz-target" "$(CARGO_FUZZ)" fuzz run --fuzz-dir fuzz/libfuzzer $$target fuzz/corpus/$$target -- \
	    -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 >"$$log" 2>&1; then tail -40 "$$log"; exit 1; fi; \
	  grep -E '^stat::number_of_executed_units|^Done [0-9]+ runs' "$$log"; \
	  RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$(HOME)/.cache/pyralog/fuzz-target" "$(CARGO_FUZZ)" fuzz cmin --fuzz-dir fuzz/libfuzzer $$target fuzz/corpus/$$target >>"$$log" 2>&1 \
	    || { echo "fuzz: minimising $$target's corpus failed (log $$log)"; exit 1; }; \
	done

fuzz-long:
	$(MAKE) fuzz FUZZ_SECONDS=600

# The chaos harness (testnet/src/chaos): CHAOS_SEEDS schedules of CHAOS_SECONDS each, from seed
# CHAOS_FIRST_SEED on, drawing from CHAOS_NEMESES (comma-separated; empty: every kind). Even
# seeds link the nodes with WireGuard, odd ones with TCP. Runs land in testnet/out/chaos/seed-N
# (history, nemesis schedule, final reads, report); the summary is testnet/out/chaos/summary.json.
# Then CHAOS_CHAIN_SEEDS schedules of partitions, pauses and kills against the 2 x 3 validator
# chain (testnet/out/chaos/chain-seed-N). Needs root (network namespaces, nftables); otherwise it
# says so and skips. About 50 s per log schedule and 70 s per chain schedule.
CHAOS_SEEDS ?= 24
CHAOS_FIRST_SEED ?= 1
CHAOS_SECONDS ?= 45
CHAOS_NEMESES ?=
CHAOS_CHAIN_SEEDS ?= 4
chaos: deps
	$(BUILD)
	$(CARGO) build --locked $(LOADGEN) --bins
	"$(CARGO_TARGET_DIR)/debug/pyralog-chaos" run --seed $(CHAOS_FIRST_SEED) --count $(CHAOS_SEEDS) \
	  --seconds $(CHAOS_SECONDS) $(if $(CHAOS_NEMESES),--nemeses $(CHAOS_NEMESES)) \
	  --out testnet/out/chaos --bin "$(CARGO_TARGET_DIR)/debug/pyralog"
	"$(CARGO_TARGET_DIR)/debug/pyralog-chaos" chain --seed $(CHAOS_FIRST_SEED) --count $(CHAOS_CHAIN_SEEDS) \
	  --out testnet/out/chaos --bin "$(CARGO_TARGET_DIR)/debug/pyralog"

testnet: deps
	$(BUILD)
	PYRALOG_BIN="$(CARGO_TARGET_DIR)/debug/pyralog" testnet/run.sh --engine $(or $(ENGINE),tendermint)

bench: deps
	$(CARGO) bench --locked -p pyralog-crypto --bench crypto

# The dev profile: its dependencies (RocksDB's C++ included) are already built at -O3 for the
# tests, and this workload is bound by fsyncs and loopback round trips.
bench-cluster: deps
	$(CARGO) bench --locked --profile dev --workspace --bench replication

# Validators over real libp2p on loopback; same dev profile as the tests (see bench-cluster).
bench-consensus: deps
	$(CARGO) bench --locked --profile dev --workspace --bench consensus

# Tunnel throughput and latency against loopback TCP in the same run; the Rosenpass handshake.
bench-tunnel: deps
	$(CARGO) bench --locked --profile dev --workspace --bench tunnel

# Not part of `make test`: about two minutes of load per system. Same dev profile as the tests.
bench-etcd: deps
	$(BUILD)
	$(CARGO) build --locked $(LOADGEN)
	PYRALOG_BIN="$(CARGO_TARGET_DIR)/debug/pyralog" LOADGEN_BIN="$(CARGO_TARGET_DIR)/debug/pyralog-loadgen" \
	  testnet/bench-etcd.sh

# Not part of `make test`: about five minutes. Needs Java (Kafka's broker and its perf tool).
bench-kafka: deps kafka-jars
	$(BUILD)
	PYRALOG_BIN="$(CARGO_TARGET_DIR)/debug/pyralog" testnet/bench-kafka.sh

# perf (Debian's linux-perf) and inferno's folding, installed here when missing; run as root.
profile-write-path: deps
	$(BUILD)
	$(CARGO) build --locked $(LOADGEN)
	@command -v perf >/dev/null || { $(SUDO) apt-get install -y -qq --no-install-recommends linux-perf; }
	@test -x "$(TOOLS)/bin/inferno-collapse-perf" || $(CARGO) install --locked inferno --version 0.12.8 --root "$(TOOLS)"
	PATH="$(TOOLS)/bin:$$PATH" PYRALOG_BIN="$(CARGO_TARGET_DIR)/debug/pyralog" \
	  LOADGEN_BIN="$(CARGO_TARGET_DIR)/debug/pyralog-loadgen" testnet/profile-write-path.sh

# The light client's verification cost (criterion), then the anchoring lag measured on the
# local 2x3 testnet (started and stopped here). Same dev profile as the tests.
bench-chain: deps
	$(CARGO) bench --locked --profile dev --workspace --bench light
	$(BUILD)
	PYRALOG_BIN="$(CARGO_TARGET_DIR)/debug/pyralog" testnet/run.sh --engine $(or $(ENGINE),tendermint) >/dev/null
	testnet/bench-anchoring.sh; status=$$?; testnet/stop.sh >/dev/null; exit $$status

# ZK_BENCH: a criterion filter (a regex of bench names, e.g. 'prove_depth_32|verify_depth_32');
# the setups and the STARK sizes of PYRALOG_BENCH_STARK_K still run, the filtered-out timings not.
ZK_BENCH ?=
bench-zk: deps
	$(CARGO) bench --locked --profile dev --workspace --bench zk $(if $(ZK_BENCH),-- '$(ZK_BENCH)')

# Constraint contracts on the append path (the constraint alone, then append throughput with and
# without one on a 3-node cluster, same run) and chain contract calls (the runtime alone, then
# blocks of calls beside blocks of transfers through the chain app). Same dev profile as the tests.
bench-contracts: deps
	$(CARGO) bench --locked --profile dev --workspace --bench constraints --bench contracts

clean:
	$(CARGO) clean
