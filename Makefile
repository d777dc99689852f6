# Quid — `make run` serves the API with a demo contract, `make test` runs every
# test. Both use DATABASE_URL when set, otherwise a private PostgreSQL cluster
# in .devdb/ (started on demand, stopped with `make db-stop`).
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Every target builds and tests with Go 1.27.3, the toolchain that go.mod names:
# govulncheck finds standard-library vulnerabilities that Quid reaches (net/http,
# crypto/tls, crypto/x509, html/template) in the machines' own Go 1.26.8. The go
# command fetches it from the module proxy once (about 76 MB). go.mod's language
# version stays 1.26.8, so a plain `go` on a machine still builds.
GOTOOLCHAIN ?= go1.27.3
export GOTOOLCHAIN

# Development defaults for `make run`; override them in the environment.
DEV_ENV := QUID_JWT_SECRET=$${QUID_JWT_SECRET:-dev-secret-change-me-dev-secret-change-me} \
	QUID_MIN_REWARD_PERIOD=$${QUID_MIN_REWARD_PERIOD:-1s} \
	QUID_ACCRUAL_INTERVAL=$${QUID_ACCRUAL_INTERVAL:-2s} \
	QUID_WEBHOOK_ALLOW_PRIVATE=$${QUID_WEBHOOK_ALLOW_PRIVATE:-true} \
	QUID_LOG_FORMAT=$${QUID_LOG_FORMAT:-text}

# Exports DATABASE_URL, starting the private cluster when it is unset.
WITH_DB := if [ -z "$$DATABASE_URL" ]; then DATABASE_URL=$$(go run ./cmd/devdb url) || exit 1; fi; export DATABASE_URL;

.PHONY: lint-spec lint-vuln vulndb-latest help run test lint bench fuzz db-stop generate build cluster-test

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build bin/quid
	go build -o bin/quid ./cmd/quid

run: build ## serve the API on QUID_ADDR (default :8080) with a demo contract
	@$(WITH_DB) export $(DEV_ENV); exec ./bin/quid serve --demo

test: ## run every test with the race detector against real PostgreSQL
	@$(WITH_DB) go test -race -count=1 -timeout 14m ./...

lint: ## gofmt, go vet, staticcheck, govulncheck, the layer rule, and openapi.yaml as standard tools consume it
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	go vet ./...
	go tool staticcheck ./...
	cd cmd/speclint && "$$(go -C ../.. tool -n staticcheck)" ./...
	go test -count=1 -run TestLayers .
	@$(MAKE) --no-print-directory lint-vuln
	@$(MAKE) --no-print-directory lint-spec

# The Go vulnerability database, pinned as a version of the golang.org/x/vulndb
# module: its data/osv/ holds every report as an OSV file, and govulncheck reads
# such a folder with -db file://. The module proxy serves it (vuln.go.dev may be
# unreachable) and the pin makes the verdict reproducible; the sum is checked
# here too, so GONOSUMDB or GOFLAGS=-insecure cannot swap the data. Update both
# lines with `make vulndb-latest`. govulncheck exits non-zero when the code calls
# a vulnerable function, of a module or of the standard library.
VULNDB_VERSION := v0.0.0-20261105234957-e22db6528018
VULNDB_SUM := h1:mfngRv0Yoh0VApsXKEN82CjD99kl7mtparN3bs3JnqI=

lint-vuln:
	@set -e; info=$$(cd "$${TMPDIR:-/tmp}" && go mod download -json golang.org/x/vulndb@$(VULNDB_VERSION)); \
	sum=$$(sed -n 's/^\t"Sum": "\(.*\)",$$/\1/p' <<<"$$info"); dir=$$(sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p' <<<"$$info"); \
	[ "$$sum" = "$(VULNDB_SUM)" ] || { echo "vulndb $(VULNDB_VERSION): sum $$sum, Makefile pins $(VULNDB_SUM)"; exit 1; }; \
	echo "go tool govulncheck -db file://$$dir/data/osv ./..."; \
	go tool govulncheck -db "file://$$dir/data/osv" ./...

vulndb-latest: ## print the newest vulnerability database pin for the Makefile
	@cd "$${TMPDIR:-/tmp}" && go mod download -json golang.org/x/vulndb@latest | sed -n 's/^\t"\(Version\|Sum\)": "\(.*\)",$$/\1 \2/p' | sed 's/^Version/VULNDB_VERSION :=/; s/^Sum/VULNDB_SUM :=/'

# openapi.yaml must give a typed Go client that compiles (oapi-codegen, default
# options, types + client) with no untyped field, and pass vacuum's recommended
# rules (cmd/speclint/vacuum-ruleset.yaml) with zero warnings. The generated client
# builds in a throw-away copy of cmd/speclint/, whose go.mod pins its dependencies.
lint-spec:
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	cp cmd/speclint/go.mod cmd/speclint/go.sum cmd/speclint/deps.go "$$tmp"/; mkdir "$$tmp/client"; \
	go tool oapi-codegen -generate types,client -package client openapi.yaml > "$$tmp/client/client.gen.go"; \
	(cd "$$tmp" && go build ./client) || { echo "oapi-codegen: the client generated from openapi.yaml does not compile"; exit 1; }; \
	if grep -n 'interface{}' "$$tmp/client/client.gen.go" | grep -v '	Attributes map\[string\]interface{} '; then \
		echo "oapi-codegen: untyped fields above; give their schemas a type (only free-form attribute maps may stay untyped)"; exit 1; fi
	go -C cmd/speclint tool vacuum lint --ruleset vacuum-ruleset.yaml --fail-severity warn --no-banner --no-style --details ../../openapi.yaml

# Quid in its production topology on loopback (README, Production topology):
# PostgreSQL primary + synchronous standby, PgBouncer (transaction pooling),
# three replicas behind HAProxy, under load through a replica SIGKILL and a
# failover, then the checks; under 150 s. Needs no DATABASE_URL: it runs its
# own servers on free ports, installing pgbouncer and haproxy when root lacks them.
cluster-test: build ## run three replicas behind HAProxy and PgBouncer through a replica kill and a database failover
	go run ./cmd/quidcluster -quid bin/quid

bench: build ## measure the performance bars (see README)
	@$(WITH_DB) go run ./cmd/quidbench

# Every Fuzz function of every package (found with go test -list, so a new
# target is fuzzed without a change here), one after another, FUZZTIME each.
# The seed corpora (testdata/fuzz/<FuzzName>/, and the f.Add seeds) also run
# as ordinary tests in `make test`; a crasher the fuzzer writes there stays as
# a regression test once checked in.
FUZZTIME ?= 30s

fuzz: ## run every fuzz target for FUZZTIME each (default 30s; make fuzz FUZZTIME=5m)
	@$(WITH_DB) set -e; targets=""; \
	for pkg in $$(go list ./...); do \
		for name in $$(go test -list '^Fuzz' "$$pkg" | grep '^Fuzz' || true); do targets="$$targets $$pkg:$$name"; done; \
	done; \
	echo "fuzz targets ($(FUZZTIME) each):"; for t in $$targets; do echo "  $$t"; done; \
	for t in $$targets; do \
		echo "== $$t"; go test "$${t%%:*}" -run '^$$' -fuzz "^$${t##*:}$$" -fuzztime $(FUZZTIME); \
	done

db-stop: ## stop the private PostgreSQL cluster
	go run ./cmd/devdb stop

generate: ## nothing is generated today; kept so tooling can rely on the target
	@true
