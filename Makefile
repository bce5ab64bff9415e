# The two set-up commands: `make demo` (backup, then restore, on a local cluster of real
# components) and `make test` (every test). Both install what they need first.

SHELL := /bin/bash
AGENT_BIN := build/agent/es-agent
SCRIPTS := $(wildcard addons/elasticsearch/dataprotection/*.sh tests/e2e/*.sh tests/e2e/lib/*.sh \
             tests/compat/*.sh bench/*.sh \
             tests/scripts/*.sh tools/*.sh addons/elasticsearch/agent/build.sh \
             addons/elasticsearch/config/*.sh tests/chart/*.sh \
             addons/elasticsearch/agent/fuzz/run.sh) .ci/run
CXX_SOURCES := $(wildcard addons/elasticsearch/agent/src/*.cc addons/elasticsearch/agent/src/*/*.h \
                 addons/elasticsearch/agent/src/*/*.cc addons/elasticsearch/agent/tests/*.cc \
                 addons/elasticsearch/agent/tests/*.h addons/elasticsearch/agent/fuzz/*.cc)

.PHONY: all deps build-deps e2e-deps agent unit lint script-tests e2e compat fuzz demo test clean \
        chart chart-node cross cross-smoke bench

all: agent

build-deps:
	bash tools/install-build-deps.sh

e2e-deps: build-deps
	bash tests/e2e/lib/deps.sh

deps: build-deps e2e-deps

agent: build-deps
	bash addons/elasticsearch/agent/build.sh

# Unit tests of the agent (GoogleTest, run by ctest); those of the cli backend run the
# engines' own keystore tools, so the engines are fetched first.
unit: agent e2e-deps
	ctest --test-dir build/agent --output-on-failure
	@[ -d ../shared/testdata/keystore ] || echo "note: ../shared is absent (it is not part of a clone):" \
	  "the unit tests that read engine-written keystores were skipped"

lint: build-deps
	shellcheck -x $(SCRIPTS)
	clang-format --dry-run -Werror $(CXX_SOURCES)
	bash tools/check-error-codes.sh
	test -z "$$(gofmt -l tests/chart/kbrender)"

# libFuzzer (clang, ASan + UBSan) on the keystore decoders, FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 60
fuzz: build-deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash addons/elasticsearch/agent/fuzz/run.sh

# Tests of the jobs' shell functions that need no cluster.
script-tests: build-deps
	bash tests/scripts/test_config.sh
	bash tests/scripts/test_build_sh.sh
	bash tests/scripts/test_rename_fuzz.sh

# End-to-end: the Elasticsearch keystore tool on agent files, the agent's security against a
# real Elasticsearch node with security on, and the jobs on a real cluster.
e2e: agent e2e-deps
	AGENT_BIN=$(CURDIR)/$(AGENT_BIN) bash tests/e2e/test_es_keystore.sh
	AGENT_BIN=$(CURDIR)/$(AGENT_BIN) bash tests/e2e/test_agent_security.sh
	AGENT_BIN=$(CURDIR)/$(AGENT_BIN) bash tests/e2e/test_jobs.sh
	bash tests/e2e/test_backup_es.sh
	AGENT_BIN=$(CURDIR)/$(AGENT_BIN) bash tests/e2e/test_restore.sh
	AGENT_BIN=$(CURDIR)/$(AGENT_BIN) bash tests/e2e/test_ipv6.sh

# The addon's chart without a cluster: helm lint and template per major, kubeconform (strict)
# against KubeBlocks v1.0.2 and main, assertions on the rendered objects and job commands.
chart: build-deps
	bash tests/chart/test_chart.sh

# A real Elasticsearch node started from the chart's rendered config and start-up, with the agent;
# then a 3-node cluster from the 3-replica render (discovery by the pods' DNS names, a restart).
chart-node: agent e2e-deps
	AGENT_BIN=$(CURDIR)/$(AGENT_BIN) bash tests/chart/test_node.sh
	bash tests/chart/test_cluster.sh

# Every supported engine version's own keystore code reads what the agent writes, and back;
# then the agent is killed during 500 writes and an engine's code judges each keystore left.
compat: agent build-deps e2e-deps
	AGENT_BIN=$(CURDIR)/$(AGENT_BIN) bash tests/compat/run.sh
	AGENT_BIN=$(CURDIR)/$(AGENT_BIN) bash tests/compat/crash_test.sh
	bash tests/compat/cli_tools.sh

# The agent cross-built for linux/arm64 (Debian's cross toolchain) into build/agent-arm64, its
# unit tests run under qemu-user (build.sh names the few left out and why). Cold: ~9 min.
cross: build-deps
	bash tools/install-cross-deps.sh
	bash addons/elasticsearch/agent/build.sh cross-test

# The arm64 binary alone (no tests, ~2 min cold on 2 cores), run under qemu-user: real HTTP, a
# keystore that Elasticsearch's tool reads, its liveness probe. Part of `make test`.
cross-smoke: build-deps e2e-deps
	bash tools/install-cross-deps.sh
	bash addons/elasticsearch/agent/build.sh cross-bin
	bash tests/scripts/test_arm64_binary.sh

demo: agent e2e-deps
	AGENT_BIN=$(CURDIR)/$(AGENT_BIN) bash tests/e2e/demo.sh

test: lint unit fuzz script-tests chart chart-node compat e2e cross-smoke demo

# Benchmarks, not part of `make test`: bench/RESULTS.md and bench/fanout.png (~10 min on 2
# quiet cores; a run rewrites bench/out).
bench: agent e2e-deps
	AGENT_BIN=$(CURDIR)/$(AGENT_BIN) bash bench/run.sh

clean:
	rm -rf build
