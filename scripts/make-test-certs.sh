#!/usr/bin/env bash
# Make a throw-away CA and a server certificate for trying the simulator's
# ssl: endpoints (TLS).  For tests and local use only: the keys are not
# protected by a passphrase.
#
#   bash scripts/make-test-certs.sh [DIR] [NAME...]
#
# DIR (default ./test-certs) gets:
#   ca.pem          the CA certificate: what an ESME trusts (ssl_context.load_verify_locations)
#   ca.key          its key
#   server.pem      the server certificate, signed by the CA, valid for NAME... (default: localhost 127.0.0.1 ::1)
#   server.key      its key (unencrypted)
#
# Then listen with, e.g. (colons inside a path must be escaped as \:):
#   ssl:3775:interface=127.0.0.1:privateKey=DIR/server.key:certKey=DIR/server.pem
# Twisted's TLS needs pyOpenSSL and service_identity: pip install 'twisted[tls]'.
set -euo pipefail

dir="${1:-test-certs}"
shift || true
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(localhost 127.0.0.1 ::1)

san=""
for name in "${names[@]}"; do
    if [[ "$name" =~ ^[0-9.]+$ || "$name" == *:* ]]; then
        san="${san:+$san,}IP:$name"
    else
        san="${san:+$san,}DNS:$name"
    fi
done

mkdir -p "$dir"
cd "$dir"
umask 077

openssl req -x509 -newkey rsa:2048 -nodes -days 825 -sha256 \
    -keyout ca.key -out ca.pem -subj "/CN=smsc-sim test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

openssl req -newkey rsa:2048 -nodes -sha256 \
    -keyout server.key -out server.csr -subj "/CN=${names[0]}" 2>/dev/null

printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' "$san" > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 -sha256 \
    -extfile server.ext -out server.pem 2>/dev/null
rm -f server.csr server.ext ca.srl
chmod 644 ca.pem server.pem

echo "made $dir/ca.pem, $dir/server.pem and $dir/server.key for: ${names[*]}"
echo "listen with: ssl:3775:interface=127.0.0.1:privateKey=$dir/server.key:certKey=$dir/server.pem"
