#!/bin/sh
# Make a local CA and a server certificate for mosquitto's TLS listener (port 8883).
#
# For testing only: the keys are unencrypted. In production use certificates from your own CA.
#
# Usage: deploy/make-certs.sh [OUT_DIR] [HOSTNAME...]
#   OUT_DIR   where to write ca.crt, ca.key, server.crt, server.key
#             (default: deploy/mosquitto/certs, mounted at /mosquitto/config/certs)
#   HOSTNAME  names the server certificate is valid for (default: localhost mosquitto);
#             127.0.0.1 is always included.
# Environment: DAYS (validity, default 365).
#
# Clients then verify the broker with ca.crt, e.g.
#   mosquitto_sub --cafile deploy/mosquitto/certs/ca.crt -h localhost -p 8883 -u ops -P ... -t 'meshwatch/#'
# Then uncomment the TLS block in deploy/mosquitto/mosquitto.conf and restart the broker.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-"$here/mosquitto/certs"}
[ $# -gt 0 ] && shift
[ $# -gt 0 ] || set -- localhost mosquitto
days=${DAYS:-365}

san="IP:127.0.0.1"
for name in "$@"; do san="$san,DNS:$name"; done

mkdir -p "$out"
umask 077
newkey="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"

# shellcheck disable=SC2086 # $newkey is several arguments
openssl req -x509 $newkey -keyout "$out/ca.key" -out "$out/ca.crt" -days "$days" \
    -subj "/CN=meshwatch test CA" 2>/dev/null
# shellcheck disable=SC2086
openssl req $newkey -keyout "$out/server.key" -out "$out/server.csr" -subj "/CN=$1" 2>/dev/null
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san" >"$out/server.ext"
openssl x509 -req -in "$out/server.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" \
    -CAcreateserial -days "$days" -extfile "$out/server.ext" -out "$out/server.crt" 2>/dev/null
rm -f "$out/server.csr" "$out/server.ext" "$out/ca.srl"
# mosquitto runs as its own user in the container: it must be able to read the key
chmod 644 "$out/ca.crt" "$out/server.crt" "$out/server.key"

echo "wrote $out/ca.crt, ca.key, server.crt, server.key (server names: $san)"
