#!/usr/bin/env bash
# Make sure Kannel (bearerbox + smsbox) is installed, for the end-to-end tests
# in tests/test_kannel.py and for examples/kannel/.
#
# Idempotent and quiet: does nothing when bearerbox and smsbox are already on
# the PATH (or in /usr/sbin, where Debian puts them).  Otherwise, when running
# as root on a system with apt-get, installs the Debian package `kannel`
# (1.4.5 on Debian 12).  Exits 0 when Kannel is there afterwards, 1 (with one
# line on stderr) when it is not.
set -u

have_kannel() {
    PATH="$PATH:/usr/sbin:/usr/local/sbin" command -v bearerbox >/dev/null 2>&1 &&
        PATH="$PATH:/usr/sbin:/usr/local/sbin" command -v smsbox >/dev/null 2>&1
}

if have_kannel; then
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "install-kannel.sh: Kannel is missing; run as root (or: sudo apt-get install kannel)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-kannel.sh: Kannel is missing and there is no apt-get; install Kannel 1.4.x by hand" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
if apt-get update -qq >"$log" 2>&1 && apt-get install -y -qq --no-install-recommends kannel >>"$log" 2>&1; then
    rm -f "$log"
else
    echo "install-kannel.sh: apt-get install kannel failed:" >&2
    tail -n 20 "$log" >&2
    rm -f "$log"
    exit 1
fi

if have_kannel; then
    exit 0
fi
echo "install-kannel.sh: kannel installed but bearerbox/smsbox not found" >&2
exit 1
