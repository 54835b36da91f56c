#!/usr/bin/env bash
# Start the machine's PostgreSQL if it is installed and down (tests use 127.0.0.1:5432).
# Where no PostgreSQL is installed the PostgreSQL tests skip with a message.
set -u
if command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; then
  exit 0
fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  for v in $(ls /etc/postgresql); do
    pg_ctlcluster --skip-systemctl-redirect "$v" main start 2>/dev/null || true
  done
  for _ in $(seq 1 20); do
    pg_isready -q -h 127.0.0.1 -p 5432 && exit 0
    sleep 0.5
  done
fi
echo "ensure-postgres: PostgreSQL is not reachable on 127.0.0.1:5432" >&2
exit 0
