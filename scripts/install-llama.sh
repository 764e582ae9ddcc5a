#!/usr/bin/env bash
# Installs llama-cpp-python (it compiles llama.cpp: minutes on 2 cores) showing the build's
# progress — one line per build step — instead of minutes of silence.
#
# The build is portable (AVX2/FMA/F16C), not -march=native: on Xeons with AMX, llama.cpp's AMX
# matmul (ggml_backend_amx_mul_mat) segfaults on the bundled Q4_1 SmolLM2 at the first
# prompt evaluation (seen with 0.3.35 and 0.3.36). It leaves out the multimodal library (mtmd:
# llama_cpp loads it only for its llava chat handlers, which streamkit does not use) and with it
# llama.cpp's common library, which only mtmd links but llama-cpp-python's CMakeLists forces on
# (patched in the unpacked sdist): the build went from 8.3 to 3.8 minutes on 2 cores, the same
# library and speed. CMAKE_ARGS overrides the flags, LLAMA_CPP_VERSION the version.
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
no_common=""
case "$CMAKE_ARGS" in *-DLLAVA_BUILD=OFF*) no_common="common off" ;; esac
key="$(printf '%s\n%s\n%s\n%s\n' "$version" "$CMAKE_ARGS" "$tag" "$no_common" | sha256sum | cut -c1-16)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/streamkit/llama-wheels/$version-$key"
# One line per build step: "[42/83] file" out of `ninja -v`'s command lines (or Make's "[ 42%]"),
# flushed at once: the rest of the build's output is dropped.
progress='
match($0, /^ *\[ *[0-9]+(%|\/[0-9]+)\]/) {
  step = substr($0, RSTART, RLENGTH); sub(/^ */, "", step); what = ""; name = ""
  if (match($0, / -c [^ ]+/)) name = substr($0, RSTART + 4, RLENGTH - 4)
  else if (match($0, / -o [^ ]+/)) { what = "link "; name = substr($0, RSTART + 4, RLENGTH - 4) }
  else if (match($0, /(Building|Linking) .*/)) name = substr($0, RSTART)
  n = split(name, parts, "/")
  if (parts[n] == "") next
  line = "  llama.cpp " step " " what parts[n]
  if (line != last) { print line; fflush(); last = line }
}'
if ls "$cache"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "streamkit: llama.cpp $version from $cache (built before with the same flags)"
else
  echo "streamkit: building llama.cpp $version for llama-cpp-python (about 4 minutes on 2 cores)"
  rm -rf "$cache.part"
  src="$(mktemp -d -t llama-src.XXXXXX)"
  "$py" -m pip download -q --no-deps --no-binary :all: -d "$src" "llama-cpp-python==$version"
  tar -xzf "$src"/llama_cpp_python-*.tar.gz -C "$src"
  tree="$(echo "$src"/llama_cpp_python-*/)"
  if [ -n "$no_common" ]; then
    forced='set(LLAMA_BUILD_COMMON ON CACHE BOOL "Build llama.cpp common library" FORCE)'
    if grep -qF "$forced" "$tree/CMakeLists.txt"; then
      sed -i "s/$forced/${forced/ ON / OFF }/" "$tree/CMakeLists.txt"
    else
      echo "streamkit: llama-cpp-python $version no longer forces its common library on: built as is"
    fi
  fi
  log="$(mktemp -t llama-build.XXXXXX.log)"
  if ! "$py" -m pip wheel -v --no-cache-dir --no-deps -w "$cache.part" "$tree" 2>&1 \
      | tee "$log" | awk "$progress"; then
    tail -n 40 "$log" >&2
    echo "streamkit: the llama.cpp build failed (the whole log: $log)" >&2
    exit 1
  fi
  rm -rf "$log" "$src"
  rm -rf "$cache" && mv "$cache.part" "$cache"
fi
"$py" -m pip install -q --force-reinstall --no-deps "$cache"/llama_cpp_python-*.whl
"$py" -m pip install -q "llama-cpp-python==$version"  # its dependencies (numpy, jinja2, diskcache)
"$py" -c "import llama_cpp" || { echo "streamkit: llama-cpp-python did not install" >&2; exit 1; }
echo "streamkit: llama-cpp-python $version installed"
