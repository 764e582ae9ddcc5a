#!/usr/bin/env bash
# Installs llama-cpp-python (it compiles llama.cpp: minutes on 2 cores) showing the build's
# progress — CMake's "[ 42%]" steps, one line each — instead of minutes of silence.
#
# The build is portable (AVX2/FMA/F16C), not -march=native: on Xeons with AMX, llama.cpp's AMX
# matmul (ggml_backend_amx_mul_mat) segfaults on the bundled Q4_1 SmolLM2 at the first
# prompt evaluation (seen with 0.3.35 and 0.3.36). CMAKE_ARGS overrides the flags. pip's wheel
# cache is bypassed: it keys on the source, not on CMAKE_ARGS, and would hand back a native build.
# usage: install-llama.sh PYTHON   (skipped when llama_cpp imports and was built without AMX)
set -euo pipefail
py="${1:-python3}"
if "$py" -c "import llama_cpp, sys; sys.exit(b'AMX_INT8 = 1' in llama_cpp.llama_print_system_info())" 2>/dev/null; then
  exit 0
fi
echo "streamkit: building llama.cpp for llama-cpp-python (a few minutes; progress below)"
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON}"
"$py" -m pip install -v --no-cache-dir --force-reinstall --no-deps "llama-cpp-python>=0.3" 2>&1 \
  | { grep --line-buffered -oE '\[ *[0-9]+%\] (Building|Linking) .*' || true; } \
  | sed -u -E 's#^(\[ *[0-9]+%\]) (Building|Linking) .* ([^ ]*/)?([^/ ]+)$#  llama.cpp \1 \2 \4#' \
  | uniq
"$py" -m pip install -q "llama-cpp-python>=0.3"  # its dependencies (numpy, jinja2, diskcache)
"$py" -c "import llama_cpp" || { echo "streamkit: llama-cpp-python did not install" >&2; exit 1; }
echo "streamkit: llama.cpp built"
