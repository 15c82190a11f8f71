# agentwatch: `make demo` runs the main job on embedded defaults, `make test` runs every test.
# Both work on a fresh machine: they create .venv, install the package with its test/demo extras and,
# for the tests, the Prometheus and Alertmanager Debian packages when their binaries are missing.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXTRAS := $(VENV)/extras

# The lowest supported versions (pyproject's lower bounds, tests/support/lowest_pins.py) in their own venv,
# for the client-facing tests, and the export guard's (the OTLP/HTTP exporters' retry code changed in 1.45).
LOWEST       := .venv-lowest
LOWEST_STAMP := $(LOWEST)/.installed
CLIENT_TESTS := tests/test_openai.py tests/test_anthropic.py tests/test_content_capture.py tests/test_sdk_tracing.py \
                tests/test_export_guard.py

.PHONY: demo test test-lowest setup system-deps bench generate check clean collector go-toolchain go-test go-bench

# The Go half (collector/): the otelcol-agentwatch distribution and agentwatch's processor and connector.
GO            ?= go
COLLECTOR_BIN := collector/bin/otelcol-agentwatch
GO_BUILDFLAGS ?= -trimpath

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,demo]'
	# opentelemetry-distro in a side folder: only the coexistence test puts it on PYTHONPATH
	$(BIN)/python -m pip install -q --no-deps --target $(EXTRAS)/distro opentelemetry-distro
	# other OpenAI instrumentations that feed the span processor in tests, each in its own side folder
	# (one pip call per folder, --upgrade: pip --target replaces a top-level folder it finds, such as opentelemetry/)
	$(BIN)/python -m pip install -q --upgrade --no-deps --target $(EXTRAS)/official \
		opentelemetry-instrumentation-genai-openai opentelemetry-instrumentation-genai-anthropic opentelemetry-util-genai
	$(BIN)/python -m pip install -q --upgrade --no-deps --target $(EXTRAS)/openllmetry \
		opentelemetry-instrumentation-openai opentelemetry-instrumentation-anthropic opentelemetry-semantic-conventions-ai
	touch $@

setup: $(STAMP)

system-deps:
	@if ! command -v promtool >/dev/null || ! command -v amtool >/dev/null; then \
		echo "installing prometheus and prometheus-alertmanager (Debian packages)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			prometheus prometheus-alertmanager >/dev/null; \
	fi

$(LOWEST_STAMP): pyproject.toml tests/support/lowest_pins.py
	rm -rf $(LOWEST)
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install -q --upgrade pip
	$(LOWEST)/bin/python tests/support/lowest_pins.py > $(LOWEST)/pins.txt
	$(LOWEST)/bin/python -m pip install -q -r $(LOWEST)/pins.txt
	$(LOWEST)/bin/python -m pip install -q --no-deps -e .
	touch $@

test-lowest: $(LOWEST_STAMP)
	$(LOWEST)/bin/python -m pytest -q -p no:cacheprovider $(CLIENT_TESTS)

# The in-process unit layer first, on its own (it fails fast, and its few wall-clock bounds see no load of ours);
# then the end-to-end layer on two xdist workers, each file on one (module fixtures such as the demo runs start
# once). See tests/conftest.py for the layers.
test: setup system-deps collector go-test test-lowest
	$(BIN)/python -m pytest -q -m unit
	$(BIN)/python -m pytest -q -m e2e -n 2 --dist loadfile

# A missing Go toolchain is an error, never a skip (CI included).
go-toolchain:
	@command -v $(GO) >/dev/null 2>&1 || { \
		echo "make: no Go toolchain ('$(GO)' is not on PATH): Go >= 1.26 is needed to build and test collector/" >&2; \
		exit 1; }

# Go's build cache makes the rebuild quick; `go build` decides what is stale.
collector: go-toolchain
	cd collector && $(GO) build $(GO_BUILDFLAGS) -o bin/otelcol-agentwatch ./cmd/otelcol-agentwatch
	@ls -l $(COLLECTOR_BIN) | awk '{printf "built %s (%.0f MiB)\n", $$NF, $$5 / 1048576}'

go-test: go-toolchain
	@cd collector && unformatted="$$(gofmt -l .)" && if [ -n "$$unformatted" ]; then \
		echo "make: gofmt needed for: $$unformatted" >&2; exit 1; fi
	cd collector && $(GO) vet ./... && $(GO) test ./...

# Processor throughput on one core (spans/s, allocations) and connector memory with 1M spans in flight.
go-bench: go-toolchain
	cd collector && $(GO) test -run '^$$' -bench BenchmarkProcessor -benchmem -cpu 1 ./processor/agentwatchprocessor/
	cd collector && $(GO) test -run '^$$' -bench BenchmarkConnectorMemory -benchtime 1x ./connector/agentwatchconnector/

demo: setup
	$(BIN)/agentwatch demo

generate: setup
	$(BIN)/agentwatch generate

bench: setup
	$(BIN)/python bench/bench_overhead.py
	$(BIN)/python bench/bench_pricing.py
	$(BIN)/python bench/bench_processor_soak.py
	$(BIN)/python bench/bench_startup.py

clean:
	rm -rf $(VENV) $(LOWEST) build *.egg-info collector/bin
