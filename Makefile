# Orders: the two commands a developer needs are `make run` and `make test`.
# Tests need PostgreSQL and Redis on localhost; see README.md.

GO        ?= go
BIN       := bin
PKGS      := ./...
BENCHTIME ?= 5s

.PHONY: build test run lint openapi-lint bench bench-history load migrate compose-check clean

build: ## compile every binary into ./bin
	$(GO) build -o $(BIN)/ ./cmd/...

test: openapi-lint ## lint the OpenAPI documents, then run every test, with the race detector, against local PostgreSQL
	$(GO) test -race -count=1 -timeout 10m $(PKGS)

run: ## run the server on :8000 against local PostgreSQL (created and migrated on start)
	$(GO) run ./cmd/ordersd

lint: ## formatting and vet
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# The OpenAPI linter (Redocly CLI, its version pinned in package-lock.json)
# is installed into its folder's node_modules by npm ci, again only when the
# lock file changes. Quiet when the documents pass.
OPENAPI_LINT := internal/tools/openapilint
OPENAPI_DOCS := api/openapi.json api/fakepay.openapi.json

openapi-lint: $(OPENAPI_LINT)/node_modules/.package-lock.json ## lint the OpenAPI documents: Redocly's recommended rules, no errors and no warnings (needs Node.js 20.19+ and npm)
	@out=$$(cd $(OPENAPI_LINT) && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
		node_modules/.bin/redocly lint --config redocly.yaml --lint-config error --format stylish \
		$(addprefix $(CURDIR)/,$(OPENAPI_DOCS)) 2>&1) || { echo "$$out"; exit 1; }; \
	echo "openapi-lint: $(OPENAPI_DOCS): no errors, no warnings"

$(OPENAPI_LINT)/node_modules/.package-lock.json: $(OPENAPI_LINT)/package-lock.json $(OPENAPI_LINT)/package.json
	cd $(OPENAPI_LINT) && npm ci --no-audit --no-fund --loglevel=error >/dev/null
	@touch $@

compose-check: ## validate docker-compose.yml as `docker compose config` would (no Docker needed)
	cd internal/tools/composecheck && $(GO) run . ../../../docker-compose.yml

bench: ## event store and placement benchmarks (numbers go to docs/benchmarks.md)
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) ./eventstore/postgres/ ./command/
	$(GO) test -run '^$$' -bench Rebuild -benchtime 1x ./projections/

bench-history: ## growth with history: cold start, RSS, first hot order, crash recovery at HISTORY_SIZES orders (default 10000 100000 1000000)
	internal/tools/ordersload/history_bench.sh $(or $(HISTORY_SIZES),10000 100000 1000000)

load: ## HTTP load and saga throughput against a running ordersd (LOAD_URL, default http://localhost:8000)
	cd internal/tools/ordersload && $(GO) run . -url $(or $(LOAD_URL),http://localhost:8000) $(LOAD_ARGS)

migrate: ## apply migrations to DATABASE_URL
	$(GO) run ./cmd/ordersctl migrate up

clean:
	rm -rf $(BIN)
