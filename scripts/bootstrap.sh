#!/usr/bin/env bash
# Creates .venv and installs every Parley distribution (editable) plus the dev tools.
# Idempotent: it does nothing when the dependency files have not changed since the last run.
#
# llama-cpp-python is published on PyPI as source only, and compiling it is most of a first
# install: scripts/build-llama.sh builds it in the background (only the library the bindings
# load, on every core) while pip fetches and installs everything else. Then this script waits
# for it, except under `make up` (PARLEY_LLM_LATER=1), where the platform starts at once and
# the llm service when the build is done (parley_launcher.pending_build).
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
MODELS_LOG=${PARLEY_DATA_DIR:-.parley}/logs/bootstrap-models.log
# A llama.cpp build in the background (scripts/build-llama.sh) and the lock of pip's installs.
MARKER=$VENV/.parley-pending-build
LOCK=$VENV/.parley-pip.lock

# The build marked in $MARKER: "running" (its process lives), "failed", or "none".
build_state() {
  [ -f "$MARKER" ] || { echo none; return; }
  if grep -qx failed "$MARKER"; then echo failed; return; fi
  local pid
  pid=$(sed -n 's/^pid=//p' "$MARKER")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo running; else echo failed; fi
}
build_log() { sed -n 's/^log=//p' "$MARKER" 2>/dev/null; }
stamp_inputs() {
  cat requirements-dev.txt clients/pyproject.toml libs/*/pyproject.toml services/*/pyproject.toml \
    scripts/bootstrap.sh scripts/build-llama.sh
}
want=$(stamp_inputs | sha256sum | cut -d' ' -f1)
if [ -f "$VENV/.parley-installed" ] && [ "$(cat "$VENV/.parley-installed")" = "$want" ]; then
  case $(build_state) in
    none) exit 0 ;;
    running) [ "${PARLEY_LLM_LATER:-}" != 1 ] || exit 0 ;;
  esac
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

# The requirements of services/llm's [local] extra: llama-cpp-python's ("llama") or the others
# ("rest"), one a line, read from its pyproject.toml so that they are written down once.
llm_local() {
  "$VENV/bin/python" - "$1" <<'PY'
import re, sys, tomllib
with open("services/llm/pyproject.toml", "rb") as f:
    local = tomllib.load(f)["project"]["optional-dependencies"]["local"]
for req in local:
    name = re.match(r"[A-Za-z0-9._-]+", req).group().lower().replace("_", "-")
    if (name == "llama-cpp-python") == (sys.argv[1] == "llama"):
        print(req)
PY
}

# The last "[step/steps]" ninja printed to the build's log.
build_step() { grep -o '^ *\[[0-9]*/[0-9]*\]' "$(build_log)" 2>/dev/null | tail -n 1 | tr -d ' []' || true; }

# Starts scripts/build-llama.sh in its own session (a Ctrl-C of `make up` does not stop it: the
# llm service waits for it), after writing the marker that parley_launcher.pending_build reads.
# Niced: the install of everything else and the services' start come first.
start_llama_build() {
  local log
  log=$(cd "$(dirname "$LOG")" && pwd)/llama-cpp-build.log
  : >"$log"
  setsid nice -n 10 bash scripts/build-llama.sh "$VENV" "$(llm_local llama)" "$MARKER" "$LOCK" \
    >>"$log" 2>&1 </dev/null &
  printf 'module=parley_llm\npid=%s\nlog=%s\n' "$!" "$log" >"$MARKER"
}

# Waits for a running build, showing its progress; fails if it failed.
wait_for_llama() {
  local step state
  [ "$TTY" = 1 ] || echo "  waiting for llama.cpp to compile"
  while [ "$(build_state)" = running ]; do
    step=$(build_step)
    status "compiling llama.cpp${step:+: step $step}"
    sleep 1
  done
  clear_status
  state=$(build_state)
  if [ "$state" != none ]; then
    echo "bootstrap: compiling llama.cpp failed; the end of $(build_log):" >&2
    tail -n 30 "$(build_log)" >&2
    rm -f "$MARKER"
    exit 1
  fi
  echo "  llama.cpp compiled and installed"
}

# The local models are the offline default, so the launcher installs them too; a cloud-only
# deployment installs a service without its [local] extra.
phase "upgrading pip"
"$VENV/bin/pip" install --quiet --upgrade pip >>"$LOG" 2>&1 || fail "upgrading pip"
# A venv that has llama-cpp-python already lets pip decide, as for any other package.
llm=(-e "services/llm[local]")
if [ "$(build_state)" = running ] || ! "$VENV/bin/pip" show -q llama-cpp-python >/dev/null 2>&1; then
  if [ "$(build_state)" != running ]; then
    phase "compiling llama.cpp in the background (log: $(dirname "$LOG")/llama-cpp-build.log)"
    start_llama_build
  fi
  llm=(-e services/llm)
  # The rest of [local] is the GGUF files' parts (1.6 GB, data without dependencies): a pip of
  # their own downloads them at the same time as the main one.
  mapfile -t models < <(llm_local rest)
fi
phase "installing Parley and its dependencies"
echo "  pip's full output: $LOG"
# Both pips share the lock; the llama.cpp wheel's install takes it alone, after them.
models_pid=""
if [ -n "${models[*]:-}" ]; then
  flock -s "$LOCK" "$VENV/bin/pip" install --progress-bar off --no-compile "${models[@]}" \
    >"$MODELS_LOG" 2>&1 &
  models_pid=$!
fi
# No byte-compiling of every installed module: the cores are the compiler's, and a service
# compiles what it imports on its first start.
if ! flock -s "$LOCK" "$VENV/bin/pip" install --progress-bar off --no-compile \
  -e libs/common \
  -e libs/launcher \
  -e libs/emulators \
  -e clients \
  -e services/gateway \
  -e "services/stt[local]" \
  "${llm[@]}" \
  -e "services/tts[local]" \
  -e services/clone \
  -e services/analytics \
  -r requirements-dev.txt 2>&1 | progress; then
  fail "pip install"
fi
if [ -n "$models_pid" ]; then
  wait "$models_pid" || LOG=$MODELS_LOG fail "installing the llm's models"
  echo "  installed the llm's models (${#models[@]} packages)"
fi
# Smart Turn's ONNX file, taken from the pinned pipecat-ai wheel without its dependencies.
phase "installing the end-of-turn model (8 MB from PyPI, checksummed)"
"$VENV/bin/python" -m parley_stt.end_of_turn_model >>"$LOG" 2>&1 || fail "the end-of-turn model"
# `make up` sets PARLEY_LLM_LATER=1: the platform starts now and the llm when it is built.
if [ "${PARLEY_LLM_LATER:-}" = 1 ] && [ "$(build_state)" = running ]; then
  step=$(build_step)
  echo "  llama.cpp is still compiling${step:+ (step $step)}: the llm service starts when it is done"
elif [ "$(build_state)" != none ]; then
  wait_for_llama
fi
echo "$want" > "$VENV/.parley-installed"
phase "done in $(elapsed SECONDS-started)"
