#!/usr/bin/env bash
# Install Debian's Chromium for the Temporal UI browser test (tests/integration/
# test_temporal_ui.py) when it is missing and this user may (root with apt-get), the way
# ensure-postgres.sh starts PostgreSQL. Elsewhere that test skips with a message.
set -u
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; }
fi
[ -x /usr/bin/chromium ] \
  || echo "ensure-chromium: /usr/bin/chromium is missing; the Temporal UI browser test will skip" >&2
exit 0
