# PWBI Edge Agent — build, test, demo, packages.
#
#   make demo           the agent against local fakes, with the dashboard up (Moka API key dialect)
#   make demo-oauth     the same with the Moka Open API: "Connect Moka" first, as a fresh install
#   make demo-nats      make demo plus a real NATS JetStream server as a second sink
#   make demo-jurnal    make demo plus the fake Jurnal (Mekari) API: sales posted as invoices
#   make test           go vet + the packages (dist) + every test under the race detector
#   make bench          the benchmarks recorded in docs/benchmarks.md
#   make dist           Linux and Windows binaries, the .deb, the .msi, SHA256SUMS (docs/installers.md)
#   make test-systemd   opt-in: the .deb in a systemd-nspawn container (root, ~2 min the first time)
#   make test-windows   opt-in: Windows binaries, tests and the MSI under Wine (root, ~1 min the first time)
#
# `make test` installs what it needs on a fresh Debian machine (Debian
# packages via apt-get when run as root, Go modules via the module proxy,
# nfpm via go install) and says so first. It installs the .deb on this
# machine (dpkg -i, then purge) only with CI=true or PWBI_INSTALL_TEST=1.

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/pwbi/edge-agent/agent/version.Version=$(VERSION)
BIN       := bin
DIST      := dist
DEMO_DIR  := .demo

# Debian packages the tests need: a C compiler (race detector, and cgo for
# the Linux tray), Chromium (the dashboard's browser test), GTK 3 and
# Ayatana AppIndicator headers (the tray, getlantern/systray), a virtual
# desktop for the tray test (Xvfb, an XEmbed tray, xdotool, screenshots),
# and the packaging and checking tools (wixl/msitools for the MSI,
# osslsigncode, systemd-analyze, desktop-file-validate).
APT_PKGS  := gcc libc6-dev chromium pkg-config libgtk-3-dev libayatana-appindicator3-dev \
             xvfb trayer xdotool imagemagick x11-utils \
             wixl msitools osslsigncode systemd desktop-file-utils

# nfpm builds the .deb. Pinned: @latest needs modules that are not reachable.
NFPM_VERSION := v2.45.2
NFPM      ?= $(shell $(GO) env GOPATH)/bin/nfpm

LINUX_OUT := $(DIST)/linux-amd64
WIN_OUT   := $(DIST)/windows-amd64

export CGO_ENABLED ?= 1

.PHONY: all build build-windows tray test test-notice deps tools vet dist test-systemd test-windows demo demo-apikey demo-oauth demo-nats demo-jurnal bench lint fuzz clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/pwbi-agent ./cmd/pwbi-agent
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/pwbi-devstack ./cmd/pwbi-devstack

build-windows:
	CGO_ENABLED=0 GOOS=windows GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/pwbi-agent.exe ./cmd/pwbi-agent
	CGO_ENABLED=0 GOOS=windows GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS) -H windowsgui' -o $(BIN)/pwbi-tray.exe ./cmd/pwbi-tray

# tray builds the Linux tray (cgo, GTK; `make deps` installs the headers).
tray:
	CGO_ENABLED=1 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/pwbi-tray ./cmd/pwbi-tray

# deps installs the Debian packages above (as root) and the Go modules,
# saying what it installs before it does.
deps:
	@missing=""; for p in $(APT_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "deps: installing the missing Debian packages with apt-get (apt-get update, then install; apt may upgrade packages they depend on):$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		else \
			echo "missing Debian packages:$$missing (run 'make deps' as root)"; exit 1; \
		fi; \
	fi
	$(GO) mod download

# tools installs nfpm $(NFPM_VERSION) into $(NFPM) unless that version is there.
tools:
	@if ! $(GO) version -m $(NFPM) 2>/dev/null | grep -q "mod.*github.com/goreleaser/nfpm/v2.*$(NFPM_VERSION)"; then \
		echo "installing nfpm $(NFPM_VERSION) into $(NFPM)"; \
		GOBIN=$(abspath $(dir $(NFPM))) $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION); \
	fi

vet: deps
	$(GO) vet ./...
	CGO_ENABLED=0 GOOS=windows GOARCH=amd64 $(GO) vet ./...

# test also builds every package (dist): a broken .wxs, nfpm.yaml or
# Windows build fails it. PWBI_DIST_DIR lets the installer tests inspect
# them, and PWBI_INSTALL_TEST=1 lets them install and purge the .deb on
# this machine (root only; it must not have pwbi-agent installed): the
# default is 1 with CI=true, else 0 (`make test PWBI_INSTALL_TEST=1` to opt
# in). test-notice says all that before anything is installed.
PWBI_INSTALL_TEST ?= $(if $(filter true,$(CI)),1,0)
test: test-notice vet dist
	PWBI_DIST_DIR=$(abspath $(DIST)) PWBI_INSTALL_TEST=$(PWBI_INSTALL_TEST) \
		$(GO) test -race -count=1 -timeout 20m ./...

test-notice:
	@echo "make test: builds every package (dist) and runs every test under the race detector."
	@if [ "$$(id -u)" = 0 ]; then \
		echo "make test: as root, it first installs missing Debian packages with apt-get (make deps), Go modules and nfpm $(NFPM_VERSION)."; \
	else \
		echo "make test: not root: it installs no Debian package (make deps fails if some are missing), only Go modules and nfpm $(NFPM_VERSION)."; \
	fi
	@if [ "$(PWBI_INSTALL_TEST)" = 1 ]; then \
		echo "make test: PWBI_INSTALL_TEST=1: the .deb is installed on this machine with dpkg -i and purged again (root only)."; \
	else \
		echo "make test: the .deb install test is skipped (it runs dpkg -i on this machine): CI=true or PWBI_INSTALL_TEST=1 to run it."; \
	fi

# dist builds the release artifacts into $(DIST)/ from a Linux machine.
# Windows files are Authenticode-signed when SIGN_CERT and SIGN_KEY are set
# (scripts/sign.sh: also SIGN_PASS, SIGN_TIMESTAMP_URL, SIGN_CA).
dist: deps tools
	rm -rf $(DIST)
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(LINUX_OUT)/pwbi-agent ./cmd/pwbi-agent
	CGO_ENABLED=1 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(LINUX_OUT)/pwbi-tray ./cmd/pwbi-tray
	CGO_ENABLED=0 GOOS=windows GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(WIN_OUT)/pwbi-agent.exe ./cmd/pwbi-agent
	CGO_ENABLED=0 GOOS=windows GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS) -H windowsgui' -o $(WIN_OUT)/pwbi-tray.exe ./cmd/pwbi-tray
	scripts/sign.sh $(WIN_OUT)/pwbi-agent.exe $(WIN_OUT)/pwbi-tray.exe
	NFPM=$(NFPM) scripts/build-deb.sh $(LINUX_OUT) $(DIST) '$(VERSION)'
	scripts/build-msi.sh $(WIN_OUT) $(DIST) '$(VERSION)'
	scripts/sign.sh $(DIST)/*.msi
	cd $(DIST) && sha256sum *.deb *.msi linux-amd64/* windows-amd64/* > SHA256SUMS
	@echo "dist: $$(ls $(DIST) | tr '\n' ' ')"

# test-systemd installs the .deb in a Debian container booted with
# systemd-nspawn and checks the service starts, restarts after kill -9 and
# stops (scripts/test-systemd.sh). Root; builds the container root once.
test-systemd: dist
	scripts/test-systemd.sh $(DIST)

# test-windows runs the Windows binaries and a few packages' tests under
# Wine, and installs, upgrades and removes the MSI with msiexec
# (scripts/test-windows.sh). Root for the packages; the Wine prefix is kept.
test-windows: dist
	scripts/test-windows.sh $(DIST)

# demo runs the fakes and the agent in the foreground; Ctrl-C stops both.
# `make demo` (= demo-apikey) uses the integration guide's API key, so data
# flows at once; `make demo-oauth` uses the Moka Open API that real accounts
# have, as a fresh install meets it: click "Connect Moka" on the dashboard
# (http://127.0.0.1:18687/) and approve on the fake Moka's page.
demo: demo-apikey

demo-apikey: build
	@mkdir -p $(DEMO_DIR)
	@./scripts/demo.sh $(BIN) $(DEMO_DIR) apikey

demo-oauth: build
	@mkdir -p $(DEMO_DIR)-oauth
	@./scripts/demo.sh $(BIN) $(DEMO_DIR)-oauth oauth

# demo-nats adds a real NATS JetStream server (in pwbi-devstack, on
# 127.0.0.1:14222) as a second sink: the devstack prints the stream's
# message count as records arrive.
demo-nats: build
	@mkdir -p $(DEMO_DIR)-nats
	@./scripts/demo.sh $(BIN) $(DEMO_DIR)-nats apikey nats

# demo-jurnal adds the fake Jurnal (Mekari accounting) API (in
# pwbi-devstack, on 127.0.0.1:18483) as a second sink: the sales arrive as
# paid invoices, and the devstack prints the documents and totals Jurnal
# holds; the dashboard lists the outlets' "last synced" times.
demo-jurnal: build
	@mkdir -p $(DEMO_DIR)-jurnal
	@./scripts/demo.sh $(BIN) $(DEMO_DIR)-jurnal apikey jurnal

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./store/ ./agent/ ./agent/deliver/ ./agent/moka/apikey/ ./agent/moka/oauth/ ./agent/unified/ ./agent/checkout/ ./agent/deliver/natssink/ ./agent/deliver/jurnalsink/

lint: deps
	gofmt -l . | tee /dev/stderr | (! read -r _)
	$(GO) vet ./...

# FUZZ lists every fuzz target as package:Target; `make fuzz` runs each for
# FUZZTIME (the seed corpora also run in `make test`).
FUZZTIME ?= 30s
FUZZ := ./agent/config:FuzzParse ./store:FuzzDecodeRecord ./store:FuzzCheckFile ./store:FuzzParseSeqFile ./store:FuzzDecodeSinkState \
        ./store:FuzzSaleFacts ./store:FuzzDecodeSeqRun ./store:FuzzFactsPlace ./internal/backoff:FuzzParseRetryAfter ./internal/jsonstr:FuzzAppend \
        ./agent/deliver/httpsink:FuzzCheckAck ./agent/deliver/httpsink/upstreamfake:FuzzDecodeBatch \
        ./agent/deliver/httpsink/upstreamfake:FuzzDecodeWire ./agent/moka/internal/wire:FuzzScanner \
        ./agent/moka/apikey:FuzzMapTransaction ./agent/moka/apikey:FuzzListPage \
        ./agent/moka/oauth:FuzzMapPaymentOAuth ./agent/moka/oauth:FuzzPaymentsPage ./agent/moka/oauth:FuzzMapRefund \
        ./agent/checkout:FuzzValidate ./agent/checkout:FuzzCallback ./agent/checkout/pairing:FuzzParse \
        ./agent/deliver/natssink:FuzzParseStoredMsg ./agent/deliver/natssink:FuzzToken ./agent/deliver/natssink:FuzzSubjectCovers \
        ./agent/deliver/jurnalsink:FuzzSaleLines ./agent/deliver/jurnalsink/internal/mekari:FuzzMessage \
        ./agent/deliver/jurnalsink/jurnalfake:FuzzCreateInvoice ./agent/deliver/jurnalsink/jurnalfake:FuzzAuthorization \
        ./internal/i18n:FuzzMatch ./internal/i18n:FuzzMoney

fuzz: deps
	@for t in $(FUZZ); do pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$fn ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

clean:
	rm -rf $(BIN) $(DIST) $(DEMO_DIR)
