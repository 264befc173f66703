#!/usr/bin/env bash
# deps.sh -- make sure the Debian packages arbiter builds, runs and tests
# with are present. As root it installs what is missing (after apt-get
# update); otherwise it names the exact command to run and fails.
set -euo pipefail

# build + run
PKGS="build-essential clang valgrind pkg-config libmicrohttpd-dev libgsl-dev libjansson-dev
libcmocka-dev libxxhash-dev libpq-dev postgresql-15 postgresql-client-15"
# tests and benchmarks: oracles, promtool, load generator, reference server
PKGS="$PKGS python3 python3-scipy python3-statsmodels python3-xxhash python3-yaml r-cran-rpact prometheus
wrk nginx-light curl procps"
# the OpenFeature SDK end-to-end test (tests/e2e/test_ofrep_sdk.py: npm ci);
# a nodejs that ships its own npm (NodeSource) needs no Debian npm
PKGS="$PKGS nodejs"
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"
# README-block test (private network namespace), response bodies against the
# OpenAPI document
PKGS="$PKGS iproute2 python3-jsonschema"
# the deployment report renders in headless Chromium (tests/e2e/test_report_chromium.py)
PKGS="$PKGS chromium chromium-driver"
# make format and make format-check (.clang-format)
PKGS="$PKGS clang-format"

missing=()
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
        missing+=("$p")
    fi
done
# the OpenAPI validator and the Grafana schema check run on Node.js (npm ci
# in tests/node); a Node.js from elsewhere (with its npm) will do
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    echo "deps: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    # the Debian postgresql package starts a system cluster; arbiter never
    # uses it, so leave it alone but don't depend on it either.
else
    echo "deps: missing Debian packages: ${missing[*]}" >&2
    echo "deps: run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
