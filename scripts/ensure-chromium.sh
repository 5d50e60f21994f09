#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (never a browser downloaded by a test tool).
# Installs it when missing; needs root, as CI and the project's machines have.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "ensure-chromium: /usr/bin/chromium is missing; install Debian's 'chromium' package" >&2
  exit 1
fi
echo "ensure-chromium: installing Debian's chromium"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
