# The two set-up commands are `make run` and `make test`; both install what is
# missing first (scripts/install-deps.sh).
SWIFT ?= swift
PORT ?= 8080
DATA ?= ./var
RELEASE_BIN := .build/release/minihost

.PHONY: deps build release run test unit integration bench nginx-config clean

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

## Build and start nginx + the workers on 127.0.0.1:$(PORT) with data in $(DATA).
run: release
	$(RELEASE_BIN) up --port $(PORT) --data $(DATA)

## Every test: Swift units, then the integration suite against real nginx.
test:
	@scripts/install-deps.sh --test
	$(SWIFT) build --build-tests
	$(MAKE) unit integration

unit:
	$(SWIFT) test --skip-build

integration:
	MINIHOST_BIN=$(CURDIR)/.build/debug/minihost python3 -m pytest -q tests/integration

## Benchmarks (release build); prints ratios and writes bench/out/.
bench:
	@scripts/install-deps.sh --bench
	$(SWIFT) build -c release
	python3 bench/run.py

## Regenerate the shipped production nginx config from the template.
nginx-config: build
	.build/debug/minihost nginx-config > deploy/nginx/minihost.conf

clean:
	rm -rf .build
