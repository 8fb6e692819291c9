#!/usr/bin/env bash
# Installs llama-cpp-python into the given Python with the fastest CPU kernels this machine runs safely.
#   bash scripts/build_llama.sh .venv/bin/python [auto|avx512|portable]
# CMAKE_ARGS, when set, is used as it is (variant "custom").
set -euo pipefail
PY="$1"; WANT="${2:-auto}"
VERSION=0.3.36
PORTABLE="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"
AVX512="$PORTABLE -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AVX_VNNI=ON"
WHEELS="${PROMPTKIT_WHEELS:-${XDG_CACHE_HOME:-$HOME/.cache}/promptkit/wheels}"

has() { grep -qw "$1" /proc/cpuinfo 2>/dev/null; }
variant="$WANT"
if [ -n "${CMAKE_ARGS:-}" ]; then
  variant=custom
elif [ "$variant" = auto ]; then
  variant=portable
  if has avx512f && has avx512bw && has avx512vl && has avx512_vnni && has avx512_bf16 && has avx512vbmi && has avx_vnni; then
    variant=avx512
  fi
fi
case "$variant" in
  portable) args="$PORTABLE" ;;
  avx512) args="$AVX512" ;;
  custom) args="$CMAKE_ARGS" ;;
  *) echo "build_llama.sh: unknown variant '$variant' (auto, avx512 or portable)" >&2; exit 2 ;;
esac

install_variant() {
  local name="$1" cmake="$2" key dir
  key=$(printf '%s' "$cmake" | sha256sum | cut -c1-12)
  dir="$WHEELS/llama-cpp-python-$VERSION-$name-$key"
  if ! ls "$dir"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    echo "building llama-cpp-python $VERSION ($name kernels; about 5 minutes on 2 cores, once)"
    mkdir -p "$dir.tmp"
    CMAKE_ARGS="$cmake" "$PY" -m pip wheel --quiet --no-deps --no-cache-dir \
      "llama-cpp-python==$VERSION" -w "$dir.tmp"
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
  fi
  "$PY" -m pip install --quiet --force-reinstall --no-deps "$dir"/llama_cpp_python-*.whl
  # its own dependencies (numpy, jinja2, diskcache, typing-extensions) and the server extra
  "$PY" -m pip install --quiet "llama-cpp-python[server]==$VERSION"
}

install_variant "$variant" "$args"
echo "llama-cpp-python $VERSION installed with $variant kernels"
echo "$variant" > "$(dirname "$PY")/../.llama-variant"
