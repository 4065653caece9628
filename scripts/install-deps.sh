#!/usr/bin/env bash
# Installs what minihost needs to build, run, test and benchmark, and nothing
# that is already there. As root it uses apt-get and pip; otherwise it prints
# the commands to run.
set -euo pipefail

# No argument: what `make run` needs. --test: also what the test suite uses.
# --bench: also the load generators.
want=${1:-}
missing=()
need_cmd() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || missing+=("$2"); }
need_file() { [ -e "$1" ] || missing+=("$2"); }

need_cmd nginx nginx-light
need_file /usr/include/fcgiapp.h libfcgi-dev
need_file /usr/include/sqlite3.h libsqlite3-dev
need_file /usr/include/openssl/evp.h libssl-dev
# libcurl for `minihost push` and `minihost pull`.
pkg-config --exists libcurl 2>/dev/null || missing+=(libcurl4-openssl-dev)
need_cmd pkg-config pkg-config
need_cmd curl curl
need_cmd openssl openssl
need_cmd python3 python3
if [ "$want" = "--test" ]; then
    # A real browser for the hostile-content test, a real terminal (tmux)
    # for push's progress bar, strace for durability ordering,
    # useradd/setpriv for the production-layout test.
    need_cmd chromium chromium
    need_cmd tmux tmux
    need_cmd strace strace
    need_cmd setpriv util-linux
    need_cmd useradd passwd
    need_cmd systemd-analyze systemd
fi
if [ "$want" = "--bench" ]; then
    need_cmd wrk wrk
    need_cmd hyperfine hyperfine
fi

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "installing: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "missing packages: ${missing[*]}" >&2
        echo "run: sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi

if ! python3 -c "import pytest, requests, websocket, tusclient, cryptography, fileuploader" >/dev/null 2>&1; then
    python3 -m pip install --quiet -r "$(dirname "$0")/../tests/requirements.txt"
fi

if ! command -v swift >/dev/null 2>&1; then
    echo "swift not found: install the Swift 6 toolchain (https://www.swift.org/install/linux/)" >&2
    exit 1
fi
