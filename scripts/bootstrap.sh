#!/usr/bin/env bash
# Creates .venv and installs every Parley distribution (editable) plus the dev tools.
# Idempotent: it does nothing when the dependency files have not changed since the last run.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
VENV=${PARLEY_VENV:-.venv}

stamp_inputs() {
  cat requirements-dev.txt libs/*/pyproject.toml services/*/pyproject.toml scripts/bootstrap.sh
}
want=$(stamp_inputs | sha256sum | cut -d' ' -f1)
if [ -f "$VENV/.parley-installed" ] && [ "$(cat "$VENV/.parley-installed")" = "$want" ]; then
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi

# The local models are the offline default, so the launcher installs them too; a cloud-only
# deployment installs a service without its [local] extra.
echo "bootstrap: installing Parley and its dependencies (first run compiles llama.cpp, ~5 min)"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet \
  -e libs/common \
  -e libs/launcher \
  -e libs/emulators \
  -e services/gateway \
  -e "services/stt[local]" \
  -e "services/llm[local]" \
  -e "services/tts[local]" \
  -e services/clone \
  -e services/analytics \
  -r requirements-dev.txt
echo "$want" > "$VENV/.parley-installed"
echo "bootstrap: done"
