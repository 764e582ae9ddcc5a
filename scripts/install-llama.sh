#!/usr/bin/env bash
# Installs llama-cpp-python (it compiles llama.cpp: minutes on 2 cores) showing the build's
# progress — CMake's "[ 42%]" steps, one line each — instead of minutes of silence.
# usage: install-llama.sh PYTHON   (skipped when llama_cpp already imports)
set -euo pipefail
py="${1:-python3}"
if "$py" -c "import llama_cpp" 2>/dev/null; then exit 0; fi
echo "streamkit: building llama.cpp for llama-cpp-python (a few minutes; progress below)"
"$py" -m pip install -v "llama-cpp-python>=0.3" 2>&1 \
  | { grep --line-buffered -oE '\[ *[0-9]+%\] (Building|Linking) .*' || true; } \
  | sed -u -E 's#^(\[ *[0-9]+%\]) (Building|Linking) .* ([^ ]*/)?([^/ ]+)$#  llama.cpp \1 \2 \4#' \
  | uniq
"$py" -c "import llama_cpp" || { echo "streamkit: llama-cpp-python did not install" >&2; exit 1; }
echo "streamkit: llama.cpp built"
