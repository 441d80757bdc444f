#!/usr/bin/env bash
# Starts the machine's PostgreSQL (the scale-out tier's tests need it at 127.0.0.1:5432) when it is
# not running, with the command the machine's notes give, and waits until it accepts connections.
set -euo pipefail

ready() { pg_isready -q -h 127.0.0.1 -p 5432; }

ready && exit 0
if ! command -v pg_ctlcluster >/dev/null || [ ! -d /etc/postgresql ]; then
  echo "start-postgres: PostgreSQL is not running and not installed here; the PostgreSQL tests will fail" >&2
  exit 1
fi
echo "start-postgres: starting PostgreSQL"
pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
for _ in $(seq 1 60); do
  ready && exit 0
  sleep 1
done
echo "start-postgres: PostgreSQL did not accept connections within 60 s" >&2
exit 1
