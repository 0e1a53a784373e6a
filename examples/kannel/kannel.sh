#!/usr/bin/env bash
# Run Kannel (bearerbox + smsbox) against a running smsc-sim, on free ports of
# 127.0.0.1, with kannel.conf.template from this directory.
#
#   examples/kannel/kannel.sh start     # fill the template, start a sink, bearerbox, smsbox; wait for the binds
#   examples/kannel/kannel.sh send [TEXT] [TO]   # the provider guide's sendsms URL (dlr-mask 17)
#   examples/kannel/kannel.sh status    # bearerbox's status page (text)
#   examples/kannel/kannel.sh logs      # where the logs are, and the sink's requests so far
#   examples/kannel/kannel.sh stop      # stop smsbox, bearerbox and the sink
#
# Settings (environment variables, defaults = smsc-sim's embedded default):
#   SMPP_HOST=127.0.0.1 SMPP1_PORT=2775 SMPP2_PORT=2776 SMPP0_PORT=2777
#   SMPP_USER=smppclient1 SMPP_PASSWORD=password
#   MSG_ID_TYPE=       (empty: Kannel's default string compare; e.g. 0x01)
#   RUN_DIR=${TMPDIR:-/tmp}/smsc-sim-kannel   (config, logs, pid files)
#   DLR_URL / MO_URL   (default: the small sink this script starts, which logs
#                       every dlr-url and sms-service call to $RUN_DIR/sink.log)
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
TEMPLATE="$HERE/kannel.conf.template"
RUN_DIR="${RUN_DIR:-${TMPDIR:-/tmp}/smsc-sim-kannel}"
STATE="$RUN_DIR/state.env"
PATH="$PATH:/usr/sbin:/usr/local/sbin"

die() { echo "kannel.sh: $*" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

urlencode() {
    python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1].encode(sys.argv[2]), safe=""))' "$1" "${2:-utf-8}"
}

running() { [ -f "$RUN_DIR/$1.pid" ] && kill -0 "$(cat "$RUN_DIR/$1.pid")" 2>/dev/null; }

stop_one() {
    local name="$1" pid
    [ -f "$RUN_DIR/$name.pid" ] || return 0
    pid="$(cat "$RUN_DIR/$name.pid")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$RUN_DIR/$name.pid"
}

status_xml() {
    # shellcheck disable=SC1090
    . "$STATE"
    python3 - "$ADMIN_PORT" "$ADMIN_PASSWORD" <<'EOF'
import sys, urllib.request
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/status.xml?password={sys.argv[2]}", timeout=2) as r:
        sys.stdout.write(r.read().decode("utf-8", "replace"))
except OSError:
    sys.exit(1)
EOF
}

start() {
    command -v bearerbox >/dev/null && command -v smsbox >/dev/null ||
        die "bearerbox/smsbox not found: run scripts/install-kannel.sh (apt-get install kannel)"
    if running bearerbox; then die "already running (RUN_DIR=$RUN_DIR); run: $0 stop"; fi
    mkdir -p "$RUN_DIR"

    local host="${SMPP_HOST:-127.0.0.1}" p1="${SMPP1_PORT:-2775}" p2="${SMPP2_PORT:-2776}" p0="${SMPP0_PORT:-2777}"
    if ! (exec 3<>"/dev/tcp/$host/$p1") 2>/dev/null; then
        die "nothing listens on $host:$p1 (SMPP1); start the simulator first: twistd -n smsc-sim"
    fi

    local admin_port smsbox_port sendsms_port sink_port admin_password
    admin_port="$(free_port)"; smsbox_port="$(free_port)"; sendsms_port="$(free_port)"
    admin_password="admin-$RANDOM$RANDOM"
    local dlr_url="${DLR_URL:-}" mo_url="${MO_URL:-}"
    if [ -z "$dlr_url" ] || [ -z "$mo_url" ]; then
        sink_port="$(free_port)"
        python3 - "$sink_port" >"$RUN_DIR/sink.log" 2>&1 <<'EOF' &
import http.server, sys, urllib.parse
class Sink(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        args = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True, encoding="latin-1"))
        args = {k: v.encode("latin-1").decode("utf-8", "replace") for k, v in args.items()}
        print(url.path, args, flush=True)
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
EOF
        echo $! >"$RUN_DIR/sink.pid"
        dlr_url="${dlr_url:-http://127.0.0.1:$sink_port/dlr}"
        mo_url="${mo_url:-http://127.0.0.1:$sink_port/mo}"
    fi

    local extra=""
    [ -n "${MSG_ID_TYPE:-}" ] && extra="msg-id-type = $MSG_ID_TYPE"
    # fill every @NAME@ placeholder; fail on any left over
    ADMIN_PORT="$admin_port" ADMIN_PASSWORD="$admin_password" SMSBOX_PORT="$smsbox_port" \
    SENDSMS_PORT="$sendsms_port" SENDSMS_USER=tester SENDSMS_PASSWORD=testpass LOG_DIR="$RUN_DIR" \
    LOG_LEVEL="${LOG_LEVEL:-0}" SMSC_ID=vonage SMPP_HOST="$host" SMPP1_PORT="$p1" SMPP2_PORT="$p2" SMPP0_PORT="$p0" \
    SMPP_USER="${SMPP_USER:-smppclient1}" SMPP_PASSWORD="${SMPP_PASSWORD:-password}" RECONNECT_DELAY=5 \
    SMSC_EXTRA="$extra" DLR_URL="$dlr_url" MO_URL="$mo_url" \
    python3 - "$TEMPLATE" "$RUN_DIR/kannel.conf" <<'EOF'
import os, re, sys
text = open(sys.argv[1], encoding="utf-8").read()
def value(match):
    name = match.group(1)
    if name not in os.environ:
        sys.exit(f"kannel.sh: no value for @{name}@")
    return os.environ[name]
open(sys.argv[2], "w", encoding="utf-8").write(re.sub(r"@([A-Z0-9_]+)@", value, text))
EOF
    cat >"$STATE" <<EOF
ADMIN_PORT=$admin_port
ADMIN_PASSWORD=$admin_password
SENDSMS_PORT=$sendsms_port
EOF

    (cd "$RUN_DIR" && exec bearerbox -v 2 "$RUN_DIR/kannel.conf" >>"$RUN_DIR/bearerbox.console" 2>&1) &
    echo $! >"$RUN_DIR/bearerbox.pid"
    for _ in $(seq 50); do status_xml >/dev/null && break; sleep 0.2; done
    status_xml >/dev/null || { tail -n 5 "$RUN_DIR/bearerbox.console" >&2; stop; die "bearerbox did not start"; }
    (cd "$RUN_DIR" && exec smsbox -v 2 "$RUN_DIR/kannel.conf" >>"$RUN_DIR/smsbox.console" 2>&1) &
    echo $! >"$RUN_DIR/smsbox.pid"

    # wait (at most 20 s) for both binds and smsbox
    local xml=""
    for _ in $(seq 100); do
        xml="$(status_xml || true)"
        if [ "$(grep -c '<status>online' <<<"$xml")" -ge 2 ] && grep -q '<type>smsbox</type>' <<<"$xml"; then
            break
        fi
        sleep 0.2
    done
    if [ "$(grep -c '<status>online' <<<"$xml")" -lt 2 ]; then
        echo "kannel.sh: the binds are not both online yet; see $RUN_DIR/bearerbox.log" >&2
    fi
    echo "Kannel is up (config and logs in $RUN_DIR)"
    echo "  sendsms: http://127.0.0.1:$sendsms_port/cgi-bin/sendsms?username=tester&password=testpass&to=%2B447700900001&text=Hello%20World&from=test&charset=ISO-8859-1&dlr-mask=17"
    echo "  status:  http://127.0.0.1:$admin_port/status?password=$admin_password"
    echo "  dlr-url: $dlr_url   sms-service: $mo_url"
}

stop() {
    stop_one smsbox
    stop_one bearerbox
    stop_one sink
    rm -f "$STATE"
}

send() {
    [ -f "$STATE" ] || die "not running; run: $0 start"
    # shellcheck disable=SC1090
    . "$STATE"
    local text="${1:-Hello World}" to="${2:-+447700900001}"
    python3 - "http://127.0.0.1:$SENDSMS_PORT/cgi-bin/sendsms?username=tester&password=testpass&to=$(urlencode "$to")&text=$(urlencode "$text" latin-1)&from=test&charset=ISO-8859-1&dlr-mask=17" <<'EOF'
import sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
        print(r.status, r.read().decode())
except urllib.error.HTTPError as error:
    print(error.code, error.read().decode()); sys.exit(1)
EOF
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    send) shift; send "$@" ;;
    status)
        [ -f "$STATE" ] || die "not running"
        # shellcheck disable=SC1090
        . "$STATE"
        python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' \
            "http://127.0.0.1:$ADMIN_PORT/status?password=$ADMIN_PASSWORD"
        ;;
    logs)
        echo "$RUN_DIR/bearerbox.log $RUN_DIR/smsbox.log $RUN_DIR/access.log"
        [ -f "$RUN_DIR/sink.log" ] && cat "$RUN_DIR/sink.log"
        ;;
    *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
