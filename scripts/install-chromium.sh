#!/usr/bin/env bash
# Make sure Chromium and its WebDriver are installed, for the console's
# browser tests in tests/test_console_browser.py.
#
# Idempotent and quiet: does nothing when chromium and chromedriver are
# already on the PATH.  Otherwise, when running as root on a system with
# apt-get, installs Debian's `chromium` and `chromium-driver`.  Exits 0 when
# both are there afterwards, 1 (with one line on stderr) when they are not.
set -u

have_chromium() {
    command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1
}

if have_chromium; then
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "install-chromium.sh: chromium is missing; run as root (or: sudo apt-get install chromium chromium-driver)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium.sh: chromium is missing and there is no apt-get; install Chromium and its chromedriver by hand" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
if apt-get update -qq >"$log" 2>&1 &&
    apt-get install -y -qq --no-install-recommends chromium chromium-driver >>"$log" 2>&1; then
    rm -f "$log"
else
    echo "install-chromium.sh: apt-get install chromium chromium-driver failed:" >&2
    tail -n 20 "$log" >&2
    rm -f "$log"
    exit 1
fi

if have_chromium; then
    exit 0
fi
echo "install-chromium.sh: chromium or chromedriver is still not on the PATH after apt-get install" >&2
exit 1
