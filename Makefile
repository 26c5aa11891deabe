# Remit — `make run` serves the app, `make test` checks everything. Both install what is missing.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# The PostgreSQL server to use (see scripts/ensure-postgres.sh); computed once per make run.
PG = $(eval PG := $$(shell scripts/ensure-postgres.sh))$(PG)
DEV_DB ?= remit
SQLX_DB = $(PG)/remit_sqlx
export REMIT_TEST_PYTHON := $(CURDIR)/target/tools/venv/bin/python
export REMIT_PG_SERVER = $(PG)
# Stripe's published OpenAPI spec (the workplace keeps it beside the checkout): the sandbox's
# conformance test checks every answer against it.
export REMIT_STRIPE_OPENAPI ?= $(firstword $(wildcard $(CURDIR)/../shared/stripe-openapi/spec3.2023-08-16.json) /work/shared/stripe-openapi/spec3.2023-08-16.json)
# Where cargo puts binaries (a CARGO_TARGET_DIR outside the checkout works as a shared cache).
BIN = $(or $(CARGO_TARGET_DIR),target)/debug

.PHONY: help tools css build build-release run demo-reset test fmt-check layers clippy sqlx-check sqlx-prepare unit e2e size bench clean-test-dbs

help:
	@echo "make run    build, migrate, seed demo data and serve http://127.0.0.1:3000 (Stripe sandbox, local outbox)"
	@echo "make demo-reset  forget the development database and its Stripe sandbox; the next make run starts afresh"
	@echo "make test   fmt, import cycles, clippy (server and wasm), offline query data, unit, integration and end-to-end tests"
	@echo "make size   release build; prints what each page downloads to hydrate (brotli), fails above 250 KB for pay and sign-in"
	@echo "make bench  benchmarks (release builds): the Stripe sandbox, the webhook intake against pgbench, webhook deliveries, receipts against WeasyPrint"

tools:
	@scripts/ensure-tools.sh

# The stylesheet: Tailwind classes used in app/ compiled by tailwind-rs (style crate).
css:
	@cargo run --quiet -p style --bin build-css -- app/src style/base.css target/style/remit.css

# --split: each page's code is a wasm chunk of its own, loaded with the page (lazy routes).
build: tools css
	cargo leptos build --split
	cargo build -p stripe-sandbox --bin stripe-sandbox

build-release: tools css
	cargo leptos build --release --split

# A development key for secrets at rest, made once per checkout and kept in target/.
target/dev.key:
	@mkdir -p target && head -c 32 /dev/urandom | base64 > $@

run: build target/dev.key
	APP_ENV=development \
	DATABASE_URL="$${DATABASE_URL:-$(PG)/$(DEV_DB)}" \
	REMIT_ENCRYPTION_KEY="$${REMIT_ENCRYPTION_KEY:-$$(cat target/dev.key)}" \
	LEPTOS_SITE_ROOT=target/site \
	$(BIN)/remit

# The development database and the Stripe sandbox's, dropped together (they refer to each other).
demo-reset:
	@for db in $(DEV_DB) $(DEV_DB)_stripe_sandbox; do \
		psql "$(PG)/postgres" -qc "DROP DATABASE IF EXISTS $$db WITH (FORCE)" >/dev/null; done
	@echo "The demo starts afresh at the next make run."

test: tools fmt-check layers clippy sqlx-check unit e2e
	@echo "make test: all checks passed"

fmt-check:
	cargo fmt --all -- --check

# Data flows one way: no crate's files import each other in a cycle.
layers:
	scripts/import-cycles.py domain/src app/src server/src stripe-sandbox/src style/src frontend/src

clippy: css
	cargo clippy --workspace --exclude frontend --all-targets -- -D warnings
	cargo clippy -p frontend -p app --target wasm32-unknown-unknown -- -D warnings

# The committed .sqlx data must match the queries and the migrations.
sqlx-check:
	@psql "$(PG)/postgres" -qc "DROP DATABASE IF EXISTS remit_sqlx WITH (FORCE)" >/dev/null
	DATABASE_URL="$(SQLX_DB)" cargo sqlx database setup --source migrations
	DATABASE_URL="$(SQLX_DB)" cargo sqlx prepare --check --workspace -- --all-targets

sqlx-prepare:
	@psql "$(PG)/postgres" -qc "DROP DATABASE IF EXISTS remit_sqlx WITH (FORCE)" >/dev/null
	DATABASE_URL="$(SQLX_DB)" cargo sqlx database setup --source migrations
	DATABASE_URL="$(SQLX_DB)" cargo sqlx prepare --workspace -- --all-targets

unit: css clean-test-dbs
	cargo test --workspace --exclude frontend

e2e: build
	end2end/run.sh

# Test databases are dropped by the tests themselves; this clears any left by a killed run.
clean-test-dbs:
	@for db in $$(psql "$(PG)/postgres" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'remit\_test\_%' OR datname LIKE 'remit\_e2e\_%'"); do \
		psql "$(PG)/postgres" -qc "DROP DATABASE IF EXISTS $$db WITH (FORCE)" >/dev/null; done

size: tools css
	cargo leptos build --release --split --frontend-only
	@scripts/size.sh

# Benchmarks run on release builds and print their figures; each fails below its target.
BENCH_PYTHON := $(CURDIR)/target/tools/bench-venv/bin/python

bench: tools $(BENCH_PYTHON)
	scripts/bench-sandbox.sh
	cargo bench -p server --bench webhook_intake
	cargo bench -p server --bench webhook_delivery
	REMIT_BENCH_PYTHON=$(BENCH_PYTHON) cargo bench -p domain --bench receipt_pdf

# WeasyPrint, which the receipt benchmark compares against (Debian's Pango renders its text).
$(BENCH_PYTHON): scripts/bench-requirements.txt
	python3 -m venv target/tools/bench-venv
	$(BENCH_PYTHON) -m pip install --quiet --disable-pip-version-check -r scripts/bench-requirements.txt
	@touch $@
