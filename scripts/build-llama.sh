#!/usr/bin/env bash
# Compiles llama-cpp-python into a wheel and installs it into the virtualenv: started in the
# background by scripts/bootstrap.sh, which has written MARKER (module, pid, log) first.
#   build-llama.sh VENV REQUIREMENT MARKER LOCK
# Only the llama library and the ggml ones it links are compiled, on every core: not
# llama.cpp's "common" library nor the multimodal one, which the bindings never load (83
# compile steps; 140 with "common"). $CMAKE_ARGS of the caller (e.g. a BLAS backend) come
# after, and win. The install waits for LOCK, which bootstrap's own pip install holds, so that two
# pips never write the virtualenv at once. On success MARKER is deleted; on failure it says
# "failed" and this script's output (its log) says why.
set -euo pipefail
venv=$1 requirement=$2 marker=$3 lock=$4

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trap 'echo failed >>"$marker"' ERR

# llama-cpp-python's CMakeLists forces LLAMA_BUILD_COMMON on before it adds llama.cpp; this runs
# at llama.cpp's project() and turns it off again (nothing else of this build needs it).
printf 'set(LLAMA_BUILD_COMMON OFF CACHE BOOL "" FORCE)\n' >"$work/no-common.cmake"
CMAKE_ARGS="-DLLAVA_BUILD=OFF -DCMAKE_PROJECT_llama.cpp_INCLUDE=$work/no-common.cmake ${CMAKE_ARGS:-}" \
  CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
  "$venv/bin/pip" wheel --no-deps --progress-bar off -v -w "$work/wheels" "$requirement"
flock "$lock" "$venv/bin/pip" install --progress-bar off "$work"/wheels/*.whl
rm -f "$marker"
