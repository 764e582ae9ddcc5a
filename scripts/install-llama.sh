#!/usr/bin/env bash
# Installs llama-cpp-python (it compiles llama.cpp: minutes on 2 cores) showing the build's
# progress — the build's "[42/251]" (Ninja) or "[ 42%]" (Make) steps, one line each — instead of
# minutes of silence.
#
# The build is portable (AVX2/FMA/F16C), not -march=native: on Xeons with AMX, llama.cpp's AMX
# matmul (ggml_backend_amx_mul_mat) segfaults on the bundled Q4_1 SmolLM2 at the first
# prompt evaluation (seen with 0.3.35 and 0.3.36). It leaves out the multimodal library (mtmd,
# about a sixth of the build; llama_cpp loads it only for its llava chat handlers, which
# streamkit does not use). CMAKE_ARGS overrides the flags, LLAMA_CPP_VERSION the version.
#
# The wheel is kept in ~/.cache/streamkit/llama-wheels/<version, flags, Python>/, so a second
# checkout or a rebuilt venv installs it in seconds. pip's own wheel cache is bypassed: it keys
# on the source, not on CMAKE_ARGS, and would hand back a native build.
# usage: install-llama.sh PYTHON   (skipped when llama_cpp imports and was built without AMX)
set -euo pipefail
py="${1:-python3}"
if "$py" -c "import llama_cpp, sys; sys.exit(b'AMX_INT8 = 1' in llama_cpp.llama_print_system_info())" 2>/dev/null; then
  exit 0
fi
version="${LLAMA_CPP_VERSION:-0.3.36}"
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAVA_BUILD=OFF}"
tag="$("$py" -c 'import sys, platform; print(sys.implementation.cache_tag, platform.machine())')"
key="$(printf '%s\n%s\n%s\n' "$version" "$CMAKE_ARGS" "$tag" | sha256sum | cut -c1-16)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/streamkit/llama-wheels/$version-$key"
if ls "$cache"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "streamkit: llama.cpp $version from $cache (built before with the same flags)"
else
  echo "streamkit: building llama.cpp $version for llama-cpp-python (about 9 minutes on 2 cores)"
  rm -rf "$cache.part"
  "$py" -m pip wheel -v --no-cache-dir --no-deps -w "$cache.part" "llama-cpp-python==$version" 2>&1 \
    | { grep --line-buffered -oE '\[ *[0-9]+(%|/[0-9]+)\] (Building|Linking) .*' || true; } \
    | sed -u -E 's#^(\[ *[0-9]+(%|/[0-9]+)\]) (Building|Linking) .* ([^ ]*/)?([^/ ]+)$#  llama.cpp \1 \3 \5#' \
    | awk '$0 != last { print; fflush(); last = $0 }'  # uniq would hold lines back in a pipe
  rm -rf "$cache" && mv "$cache.part" "$cache"
fi
"$py" -m pip install -q --force-reinstall --no-deps "$cache"/llama_cpp_python-*.whl
"$py" -m pip install -q "llama-cpp-python==$version"  # its dependencies (numpy, jinja2, diskcache)
"$py" -c "import llama_cpp" || { echo "streamkit: llama-cpp-python did not install" >&2; exit 1; }
echo "streamkit: llama-cpp-python $version installed"
