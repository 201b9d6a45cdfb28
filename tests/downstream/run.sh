#!/usr/bin/env bash
# Installs latent from its build tree into a private prefix, then configures, builds and
# runs tests/downstream against it. Usage: run.sh <latent-build-dir> <work-dir>
set -euo pipefail
build=$1
work=$2
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
# LATENT_DOWNSTREAM_CMAKE_ARGS: extra arguments where dependencies live in a private prefix
# (tools/gpu-check sets it).
read -r -a extra <<< "${LATENT_DOWNSTREAM_CMAKE_ARGS:-}"
cmake -S "$here" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" \
      -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" "${extra[@]}" >/dev/null
cmake --build "$work/build" >/dev/null
"$work/build/downstream"
