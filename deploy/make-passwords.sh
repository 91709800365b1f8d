#!/bin/sh
# Create deploy/mosquitto/passwd, the broker's password file, with mosquitto_passwd.
#
# Usage: deploy/make-passwords.sh USER=PASSWORD [USER=PASSWORD...]
#    or: MOSQUITTO_USERS="meshwatch=s3cret ops=0ther berlin=pw1" deploy/make-passwords.sh
# Arguments win over the environment. The file is replaced, not appended to.
# Environment: PASSWD_FILE (default: deploy/mosquitto/passwd, mounted at
# /mosquitto/config/passwd).
#
# User names are what deploy/mosquitto/acl expects: "meshwatch" (the pipeline), "ops"
# (maintenance tools) and one user per site named like the site ID (e.g. "berlin").
# Passwords must not contain spaces when given through MOSQUITTO_USERS.
# Without a local mosquitto_passwd, run it from the image:
#   docker run --rm -v "$PWD/deploy/mosquitto:/mosquitto/config" eclipse-mosquitto:2 \
#       mosquitto_passwd -b /mosquitto/config/passwd USER PASSWORD
set -eu

here=$(cd "$(dirname "$0")" && pwd)
file=${PASSWD_FILE:-"$here/mosquitto/passwd"}
[ $# -gt 0 ] || set -- ${MOSQUITTO_USERS:-}
if [ $# -eq 0 ]; then
    echo "usage: $0 USER=PASSWORD [USER=PASSWORD...] (or set MOSQUITTO_USERS)" >&2
    exit 2
fi
command -v mosquitto_passwd >/dev/null || { echo "$0: mosquitto_passwd not found" >&2; exit 1; }

umask 077
tmp="$file.tmp.$$"
trap 'rm -f "$tmp"' EXIT
: >"$tmp"
for pair in "$@"; do
    user=${pair%%=*}
    password=${pair#*=}
    if [ -z "$user" ] || [ "$user" = "$pair" ] || [ -z "$password" ]; then
        echo "$0: expected USER=PASSWORD, got '$pair'" >&2
        exit 2
    fi
    mosquitto_passwd -b "$tmp" "$user" "$password"
done
# mosquitto in the container runs as another user; it needs to read the file
chmod 644 "$tmp"
mv "$tmp" "$file"
echo "wrote $file ($# users)"
