# Strait developer and CI entry points. `make help` lists the targets.
#
# CI runs exactly one thing: `make test` (through .ci/run).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules --no-print-directory

GO        ?= go
GOFMT     ?= $(shell $(GO) env GOROOT)/bin/gofmt
TOOLS_MOD := hack/tools/go.mod
# Dev tools are pinned in their own module (hack/tools/go.mod, `tool` directives) and run
# with `go tool`, which builds them once into the Go build cache.
GOTOOL    := $(GO) tool -modfile=$(TOOLS_MOD)
LINT      := $(GOTOOL) golangci-lint

# `git describe` in a clone with tags or not; "dev" outside git (for example a source tarball).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS ?=
GO_LDFLAGS = $(strip -X main.version=$(VERSION) $(LDFLAGS))

BIN_DIR := bin
BINARY  := $(BIN_DIR)/strait

TEST_TIMEOUT ?= 20m
TEST_FLAGS   ?=
# Package lists default to the whole module; narrow them with e.g. `make unit PKGS=./translator/...`.
PKGS         ?= ./...
# Benchmarks cover the packages that exist of these.
BENCH_DIRS   ?= translator xds proxy
BENCH_PKGS   ?= $(foreach d,$(BENCH_DIRS),$(if $(wildcard $(d)),./$(d)/...))
BENCH_FLAGS  ?=
E2E_TIMEOUT  ?= 30m
E2E_FLAGS    ?=

IMAGE ?= strait:$(VERSION)

# Everything gofmt must be happy with: all Go files but VCS metadata, build output and testdata.
GO_FILES_CMD := find . -type f -name '*.go' \
	-not -path './.git/*' -not -path './$(BIN_DIR)/*' -not -path './_output/*' \
	-not -path './.cache/*' -not -path '*/testdata/*'

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} \
		/^##@ / {printf "\n%s\n", substr($$0, 5); next} \
		/^[a-zA-Z0-9_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

##@ Build

.PHONY: build
build: ## Build bin/strait (static, version stamped).
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(GO_LDFLAGS)' -o $(BINARY) ./cmd/strait

.PHONY: docker
docker: ## Build the container image strait:$$VERSION (needs a Docker engine).
	@command -v docker >/dev/null || { echo "docker: no docker client on PATH" >&2; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "docker: no Docker engine reachable (this machine has only the client)" >&2; exit 1; }
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE) .

##@ Checks

# The one command CI runs. The steps run in sequence, fail fast, and end with go test's summary.
.PHONY: test
test: ## CI: deps, kube binaries, gofmt check, vet, lint, race-enabled unit tests, GATEWAY-HTTP core conformance.
	$(MAKE) deps
	$(MAKE) kube
	$(MAKE) fmt-check
	$(MAKE) vet
	$(MAKE) lint
	$(MAKE) unit
	$(MAKE) conformance-core

.PHONY: deps
deps: ## Install the Debian packages the build and tests need (only when missing).
	bash hack/deps.sh

.PHONY: kube
kube: ## Build etcd, kube-apiserver and kube-controller-manager for local clusters (cached; ~10 min the first time).
	bash hack/kube/build.sh >/dev/null

.PHONY: fmt-check
fmt-check: ## Fail if any Go file is not gofmt-formatted.
	@echo ">> gofmt -l"
	@unformatted="$$($(GO_FILES_CMD) -print0 | xargs -0 -r $(GOFMT) -l)"; \
	if [[ -n "$$unformatted" ]]; then \
		echo "These files are not gofmt-formatted (run 'make fmt'):" >&2; \
		echo "$$unformatted" >&2; \
		exit 1; \
	fi

.PHONY: vet
vet: ## go vet (and the conformance harness, a module of its own).
	$(GO) vet $(PKGS)
	cd e2e/conformance && $(GO) vet ./...

.PHONY: lint
lint: ## golangci-lint (config: .golangci.yml; tool pinned in hack/tools/go.mod).
	$(LINT) run $(PKGS)
	cd e2e/conformance && $(GO) tool -modfile=../../$(TOOLS_MOD) golangci-lint run ./...

.PHONY: lint-fix
lint-fix: ## golangci-lint with automatic fixes.
	$(LINT) run --fix $(PKGS)

.PHONY: fmt
fmt: ## Format all Go code (gofmt -s + goimports with the local prefix).
	$(LINT) fmt

.PHONY: unit
unit: ## Unit tests with the race detector (needs cgo: gcc), then the proxy's without it.
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(TEST_FLAGS) $(PKGS)
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(TEST_FLAGS) $(NORACE_PKGS)

# The proxy's tests run a second time without the race detector, which changes what they
# run: raw socket system calls (proxy/internal/sock) only without it, goroutine stack sizes
# (TestFastPathIdleStack, //go:build !race) only measurable without it.
NORACE_PKGS := $(if $(filter ./...,$(PKGS)),./proxy/...,$(filter ./proxy/%,$(PKGS)))

.PHONY: cover
cover: ## Unit tests with coverage into _output/coverage.out and _output/coverage.html.
	mkdir -p _output
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) -covermode=atomic -coverprofile=_output/coverage.out $(TEST_FLAGS) $(PKGS)
	$(GO) tool cover -html=_output/coverage.out -o _output/coverage.html
	$(GO) tool cover -func=_output/coverage.out | tail -n 1

.PHONY: bench
bench: ## Go benchmarks of the translator, xds and proxy packages.
	@if [[ -z "$(strip $(BENCH_PKGS))" ]]; then echo "bench: none of $(BENCH_DIRS) exists yet; nothing to run"; exit 0; fi; \
	set -x; $(GO) test -run '^$$' -bench . -benchmem $(BENCH_FLAGS) $(BENCH_PKGS)

.PHONY: bench-proxy
bench-proxy: ## Proxy benchmark: Strait vs HAProxy, nginx, Go ReverseProxy and direct (~9 min; QUICK=1 for ~3 min).
	$(GO) run ./hack/bench $(if $(QUICK),--quick) $(BENCH_PROXY_FLAGS)

.PHONY: e2e
e2e: ## End-to-end tests under e2e/ (skipped when e2e/ does not exist yet).
	@if [[ ! -d e2e ]]; then echo "e2e: no e2e/ directory yet; nothing to run"; exit 0; fi; \
	set -x; $(GO) test -count=1 -timeout $(E2E_TIMEOUT) $(E2E_FLAGS) ./e2e/...

##@ Conformance

CONFORMANCE_PROFILES ?= GATEWAY-HTTP,GATEWAY-GRPC,GATEWAY-TLS,GATEWAY-TCP
CONFORMANCE_FLAGS    ?=
# The harness is a module of its own (e2e/conformance/go.mod), which ./... leaves out.
CONFORMANCE_TEST     := cd e2e/conformance && $(GO) test -count=1 -timeout $(E2E_TIMEOUT) -run TestConformance

.PHONY: conformance
conformance: ## Gateway API conformance suite (as root): every claimed feature; reports in docs/conformance/.
	$(CONFORMANCE_TEST) -v . -args -conformance-profiles $(CONFORMANCE_PROFILES) \
		-report-dir $(CURDIR)/docs/conformance -version $(VERSION) $(CONFORMANCE_FLAGS)

.PHONY: conformance-core
conformance-core: ## Gateway API conformance, GATEWAY-HTTP core features only (as root).
	$(CONFORMANCE_TEST) . -args -core-only $(CONFORMANCE_FLAGS)

##@ Tools and housekeeping

CLUSTERS ?= us,eu,ap
LOCALCLUSTER_FLAGS ?=

.PHONY: localcluster
localcluster: ## Local Kubernetes clusters on loopback until Ctrl-C (CLUSTERS=us,eu,ap; hack/localcluster/README.md).
	$(GO) run ./hack/localcluster up --clusters $(CLUSTERS) $(LOCALCLUSTER_FLAGS)

.PHONY: tools
tools: ## Build the pinned dev tools into the Go build cache (the first build takes minutes).
	$(LINT) version
	$(GOTOOL) gotestsum --version

.PHONY: clean
clean: ## Remove build and test output (the Go caches are kept).
	rm -rf $(BIN_DIR) _output
	find . -type f \( -name '*.test' -o -name 'coverage.out' -o -name 'coverage.html' -o -name '*.coverprofile' \) \
		-not -path './.git/*' -delete
