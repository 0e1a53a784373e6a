#!/usr/bin/env bash
# Install what the tests need, then run the whole test suite.
# Arguments go to pytest: bash scripts/test.sh -q tests/test_tap.py
set -euo pipefail
cd "$(dirname "$0")/.."

# compat mode: setuptools' default (strict) editable finder is invisible to
# twistd's plugin discovery; compat mode puts the checkout itself on sys.path
python3 -m pip install -q --root-user-action=ignore -e '.[test]' --config-settings editable_mode=compat

# Kannel (bearerbox) for the end-to-end tests with a real Kannel ESME
if [ "$(id -u)" = 0 ] && ! command -v bearerbox >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test.sh: installing kannel" >&2
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kannel; } >/dev/null 2>&1; then
        echo "scripts/test.sh: WARNING: could not install kannel; the Kannel tests will fail" >&2
    fi
fi

exec python3 -m pytest "$@"
