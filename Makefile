# PWBI Edge Agent — build, test, demo.
#
#   make demo    the agent against local fakes, with the dashboard up
#   make test    go vet + every test under the race detector
#   make bench   the benchmarks recorded in docs/benchmarks.md
#
# `make test` installs what it needs on a fresh Debian machine (Debian
# packages via apt-get when run as root, Go modules via the module proxy).

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/pwbi/edge-agent/agent/version.Version=$(VERSION)
BIN       := bin
DEMO_DIR  := .demo
APT_PKGS  := gcc libc6-dev chromium

export CGO_ENABLED ?= 1

.PHONY: all build build-windows test deps vet demo bench lint fuzz clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/pwbi-agent ./cmd/pwbi-agent
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/pwbi-devstack ./cmd/pwbi-devstack

build-windows:
	CGO_ENABLED=0 GOOS=windows GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/pwbi-agent.exe ./cmd/pwbi-agent

# deps installs the toolchain pieces the tests need: a C compiler for the
# race detector, headless Chromium for the dashboard's browser test
# (internal/browsertest), and the Go modules.
deps:
	@missing=""; for p in $(APT_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		else \
			echo "missing Debian packages:$$missing (run 'make deps' as root)"; exit 1; \
		fi; \
	fi
	$(GO) mod download

vet: deps
	$(GO) vet ./...
	CGO_ENABLED=0 GOOS=windows GOARCH=amd64 $(GO) vet ./...

test: vet
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -o /dev/null ./cmd/pwbi-agent
	CGO_ENABLED=0 GOOS=windows GOARCH=amd64 $(GO) build -o /dev/null ./cmd/pwbi-agent
	$(GO) test -race -count=1 -timeout 20m ./...

# demo runs the fakes and the agent in the foreground; Ctrl-C stops both.
demo: build
	@mkdir -p $(DEMO_DIR)
	@./scripts/demo.sh $(BIN) $(DEMO_DIR)

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./store/ ./agent/upstream/ ./agent/mokapos/ ./agent/unified/

lint: deps
	gofmt -l . | tee /dev/stderr | (! read)
	$(GO) vet ./...

fuzz: deps
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./agent/config/
	$(GO) test -run '^$$' -fuzz FuzzDecodeRecord -fuzztime 30s ./store/
	$(GO) test -run '^$$' -fuzz FuzzRetryAfter -fuzztime 30s ./agent/upstream/
	$(GO) test -run '^$$' -fuzz FuzzAppend -fuzztime 30s ./internal/jsonstr/
	$(GO) test -run '^$$' -fuzz FuzzMapTransaction -fuzztime 30s ./agent/mokapos/

clean:
	rm -rf $(BIN) $(DEMO_DIR)
