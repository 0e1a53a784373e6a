#!/usr/bin/env bash
# Install what the tests need, then run the whole test suite.
# Arguments go to pytest: bash scripts/test.sh -q tests/test_tap.py
set -euo pipefail
cd "$(dirname "$0")/.."

# compat mode: setuptools' default (strict) editable finder is invisible to
# twistd's plugin discovery; compat mode puts the checkout itself on sys.path
python3 -m pip install -q --root-user-action=ignore -e '.[test]' --config-settings editable_mode=compat

# Kannel (bearerbox) for the end-to-end tests with a real Kannel ESME;
# the Kannel tests fail (they never skip) with instructions when it is missing
bash scripts/install-kannel.sh || true

# Chromium and chromedriver for the console's browser tests; those tests
# fail (they never skip) with instructions when they are missing
bash scripts/install-chromium.sh || true

# tshark for the pcap trace's tests; they fail (they never skip) with
# instructions when it is missing
bash scripts/install-tshark.sh || true

# redis-server for the Redis cluster's tests (each starts its own on a free
# port); they fail (they never skip) with instructions when it is missing
bash scripts/install-redis.sh || true

exec python3 -m pytest "$@"
