#!/usr/bin/env bash
# Make sure tshark (Wireshark's command line) is installed, for the pcap
# trace's tests in tests/test_trace_tshark.py.
#
# Idempotent and quiet: does nothing when tshark is already on the PATH.
# Otherwise, when running as root on a system with apt-get, installs
# Debian's `tshark`, answering wireshark-common's question (may non-root
# users capture?) with "no" beforehand, so that nothing waits for a person.
# Exits 0 when tshark is there afterwards, 1 (with one line on stderr) when
# it is not.
set -u

if command -v tshark >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "install-tshark.sh: tshark is missing; run as root (or: sudo apt-get install tshark)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-tshark.sh: tshark is missing and there is no apt-get; install Wireshark's tshark by hand" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
if command -v debconf-set-selections >/dev/null 2>&1; then
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections >"$log" 2>&1
fi
if apt-get update -qq >>"$log" 2>&1 &&
    apt-get install -y -qq --no-install-recommends tshark >>"$log" 2>&1; then
    rm -f "$log"
else
    echo "install-tshark.sh: apt-get install tshark failed:" >&2
    tail -n 20 "$log" >&2
    rm -f "$log"
    exit 1
fi

if command -v tshark >/dev/null 2>&1; then
    exit 0
fi
echo "install-tshark.sh: tshark is still not on the PATH after apt-get install" >&2
exit 1
