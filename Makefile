# yzpay — every target works from a fresh clone with only Go installed.
# Tools are installed into ./bin/tools, pinned, through the Go module proxy.

GO        ?= go
MODULE    := github.com/yzpay/yzpay
PKGS      := $(MODULE)/...
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X $(MODULE)/cmd/yzpay/app.Version=$(VERSION)
TOOLS     := $(CURDIR)/bin/tools
STATICCHECK_VERSION := v0.8.2
# The race detector needs cgo and a C compiler; without one the tests still run.
RACE      := $(shell command -v $$($(GO) env CC) >/dev/null 2>&1 && [ "$$($(GO) env CGO_ENABLED)" = 1 ] && echo -race)
TEST_FLAGS ?= $(RACE) -count=1 -timeout 30m

.PHONY: all build run test test-short lint fuzz bench bench-smoke migrate compose-up clean tools

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/yzpay ./cmd/yzpay
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/gateway ./services/gateway/cmd/gateway
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/tradefetcher ./services/tradefetcher/cmd/tradefetcher
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/notifier ./services/notifier/cmd/notifier

# The sandbox demo: the whole flow on this machine, nothing else installed.
run: build
	bin/yzpay serve --sandbox

# Postgres-backed tests need TEST_DATABASE_URL (default: postgres@127.0.0.1:5432);
# without a Postgres they skip with one line, unless CI is set.
# The fault tests' ledgers (sent, delivered, missing, duplicates, recovery)
# are printed after the run: go test shows nothing of a passing package.
LEDGER := $(CURDIR)/bin/fault-ledger.txt
# TestCluster (3 NATS nodes, two replicas of each service, Postgres) runs on
# its own after the rest, so it does not compete with them for the CPU. The
# fuzz targets then run briefly (FUZZTIME_TEST each) beyond their corpora.
FUZZTIME_TEST ?= 4000x
test:
	@mkdir -p bin && rm -f $(LEDGER)
	YZPAY_LEDGER_FILE=$(LEDGER) $(GO) test $(TEST_FLAGS) -skip '^TestCluster$$' $(PKGS)
	YZPAY_LEDGER_FILE=$(LEDGER) $(GO) test $(TEST_FLAGS) -run '^TestCluster$$' ./cmd/yzpay/faults
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME_TEST)
	@if [ -s $(LEDGER) ]; then echo '>> fault-test ledgers'; cat $(LEDGER); fi
	@$(MAKE) --no-print-directory bench-smoke

# Native Go fuzzing of the push parser and verifier, the msg decoder and the
# QR-create request decoder; and, against encoding/json (same fields, same
# errors), of the one-pass JSON scanner, the readers built on it for pushes,
# trade.get answers and Youzan's envelope, and the event decoder; FUZZTIME
# each. Their committed corpora
# (testdata/fuzz) already run in every `go test`; new finds land in the Go
# cache, failures in testdata/fuzz (commit them with the fix).
# FUZZTIME counts executions, not seconds: with a duration, Go 1.26's fuzz
# coordinator can fail a target with "context deadline exceeded" at the
# deadline although it found nothing (go.dev/issue/75804, fixed in Go 1.27).
FUZZTIME ?= 50000x
FUZZ_TARGETS := shared/youzan/push:FuzzParse shared/youzan/push:FuzzVerify shared/youzan/push:FuzzDecodeMsg services/gateway:FuzzParseOrderRequest \
	shared/youzan/push:FuzzParseSameAsReference shared/youzan:FuzzReadTradeGetSameAsReference \
	shared/youzan/internal/jsonscan:FuzzScanner shared/youzan:FuzzClassifySameAsReference shared/domain:FuzzDecode
fuzz:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
		echo ">> $$fn ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) ./$$pkg || exit 1; done

test-short:
	$(GO) test -short -count=1 $(PKGS)

$(TOOLS)/staticcheck:
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

tools: $(TOOLS)/staticcheck

# gofmt, go vet, staticcheck, and the metrics linter (the one promtool runs,
# in TestMetricsLint; it also runs promtool itself when installed).
lint: tools
	@echo '>> gofmt'; out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "$$out"; echo 'gofmt: files above need formatting'; exit 1; fi
	@echo '>> go vet'; $(GO) vet $(PKGS)
	@echo '>> staticcheck'; $(TOOLS)/staticcheck $(PKGS)
	@echo '>> metrics lint'; $(GO) test -count=1 -run 'TestMetricsLint' $(MODULE)/cmd/yzpay/app

# End-to-end benchmark of both setups (see docs/performance.md); the split one
# uses the machine's PostgreSQL (TEST_DATABASE_URL) and NATS (BENCH_NATS_URL).
BENCH_FLAGS ?=
bench: build
	$(GO) run ./cmd/yzpay/bench -bin bin $(BENCH_FLAGS)

# A few seconds of `yzpay serve` at one modest rate (embedded JetStream and
# SQLite, nothing installed): fails only when the ledger does not close (a
# payment missing, or announced under two event ids), never on timing.
bench-smoke: build
	$(GO) run ./cmd/yzpay/bench -bin bin -smoke

migrate: build
	bin/yzpay migrate

compose-up:
	docker compose up --build -d

clean:
	rm -rf bin
