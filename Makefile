# The two set-up commands are `make run` and `make test`; both install what is
# missing first (scripts/install-deps.sh).
SWIFT ?= swift
PORT ?= 8080
DATA ?= ./var
RELEASE_BIN := .build/release/minihost

.PHONY: deps build release run test unit integration bench fuzz crash-test nginx-config clean

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

## libFuzzer targets (fuzz/) with address sanitizer, FUZZ_SECONDS each (default 60).
fuzz:
	@scripts/install-deps.sh
	scripts/fuzz.sh

## kill -9 the worker KILLS times (default 200) under load, then check nothing acknowledged was lost.
KILLS ?= 200
crash-test:
	@scripts/install-deps.sh --test
	$(SWIFT) build
	python3 tests/crash/crash_test.py --kills $(KILLS)

## Regenerate the shipped production nginx config from the template.
nginx-config: build
	.build/debug/minihost nginx-config > deploy/nginx/minihost.conf

clean:
	rm -rf .build
