# The two commands of the README:
#   make demo   build the Debian package; bring up the two-node lab with it installed
#               in both nodes (dpkg), pair it, sync a change, verify, the verdict,
#               a driver fix, the failover plan, a swap and its failover record, the weekly report
#   make test   gofmt, vet, unit tests (-race, with /etc, /var/lib and /run
#               empty: scripts/unit-tests.sh), each fuzz target for ~10 s of executions
#               (scripts/fuzz.sh; FUZZTIME=500000x for longer), then the lab end-to-end suite
#               (-v: its figures are the lines with "figure:")
# Both install what they need from Debian's packages first (run as root).

export PATH := /usr/local/go/bin:$(PATH)
GO      ?= go
BIN     := bin/sentry
LABBIN  := bin/sentry-lab
HOSTPKG := debootstrap systemd-container iproute2 util-linux git curl kmod gnupg gpgv restic tmux

.PHONY: demo test deps build unit e2e man lab-down clean bench-agent-idle bench-agent-probing bench-commit bench-sync

deps:
	@missing=""; \
	for c in debootstrap systemd-nspawn ip nsenter git curl depmod gpg gpgv restic tmux; do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing host packages (missing:$$missing)"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(HOSTPKG); \
	fi
	@# Prometheus (and promtool) for the lab's office: the e2e test of the
	@# metrics and the shipped alert rules. Without its recommends (no
	@# node exporter); started only by the test, in the office namespace.
	@if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then \
		echo "installing host package prometheus (for the lab's office)"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus; \
	fi
	@# Debian's chromium (headless) for the weekly report's HTML test
	@# (e2e TestReportHTMLInBrowser), with the fonts the page names.
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "installing host packages chromium fonts-liberation (the report's browser test)"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-liberation; \
	fi

# sentry is what a server runs; sentry-lab runs the two-node lab and
# installs the sentry beside it into the nodes.
build:
	$(GO) build -o $(BIN) ./sentry
	$(GO) build -o $(LABBIN) ./cmd/sentry-lab

# The demo's nodes get sentry from its Debian package (make deb), as servers do.
demo: deps build deb
	SENTRY=dist/sentry_$$($(GO) run ./cmd/sentry-deb version)_amd64.deb scripts/demo.sh

test: deps
	@unformatted=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	GO=$(GO) scripts/unit-tests.sh
	GO=$(GO) scripts/fuzz.sh
	SENTRY_E2E=1 $(GO) test -count=1 -timeout 60m -v ./e2e

unit:
	$(GO) test ./...

e2e: deps
	SENTRY_E2E=1 $(GO) test -count=1 -timeout 60m -v ./e2e

bench-agent-idle: deps
	bench/agent-idle.sh

bench-agent-probing: deps
	bench/agent-probing.sh

bench-commit:
	$(GO) run ./bench/commitbench

bench-sync: deps
	$(GO) run ./bench/synclatency

# Every page afresh, so that none is left of a command that is gone.
man: build
	rm -f docs/man/*.1
	./$(BIN) man --dir docs/man
	./$(LABBIN) man --dir docs/man

lab-down: build
	./$(LABBIN) down

clean:
	rm -rf bin dist

# The Debian package dist/sentry_VERSION_amd64.deb (docs/install.md): the
# version from git (cmd/sentry-deb, packaging/previous-release), the binary
# built static and stripped with that version, packaged with nfpm as a Go
# library (no packaging tool on the host).
.PHONY: deb
deb:
	@set -e; v=$$($(GO) run ./cmd/sentry-deb version); \
	echo "sentry $$v"; \
	mkdir -p dist/build; \
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$$v" -o dist/build/sentry ./sentry; \
	$(GO) run ./cmd/sentry-deb build -binary dist/build/sentry -version "$$v" -out dist
