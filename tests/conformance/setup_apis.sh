#!/usr/bin/env bash
# Prepare the real TensorRT Python bindings (8.6.1 for the 8.5/8.6 family, 10.3.x as on JetPack 6.1, the
# newest 11.x) and a real pycuda build, importable here over stub libraries (tests/conformance/README.md).
# Nothing can run over the stubs; the conformance tests only read names, members and signatures.
#
#   EDGEVID_API_CACHE  cache folder (default ~/.cache/edgevid-apis); a second run reuses it
#   EDGEVID_API_PYTHON interpreter to read the APIs with (default: python3, or the newest python3.8-3.11
#                      on PATH when python3 is newer: TensorRT 8.6.1 has wheels for CPython 3.6 to 3.11 only)
#   CUDA_HOME          CUDA toolkit whose headers pycuda is built against (default /usr/local/cuda)
#
# Writes $EDGEVID_API_CACHE/apis.json, which the tests read. Exits non-zero, saying why, when a part cannot
# be prepared (no network and no cache, no compiler, no CUDA headers).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# TensorRT 8.6.1's wheels stop at CPython 3.11: on a newer python3, take the newest 3.8-3.11 on PATH
pick_python() {
  local p
  for p in python3 python3.11 python3.10 python3.9 python3.8; do
    if command -v "$p" > /dev/null && "$p" -c 'import sys; sys.exit(not (3, 8) <= sys.version_info[:2] <= (3, 11))'; then
      echo "$p"; return
    fi
  done
  echo "setup_apis: FAILED: no CPython 3.8-3.11 on PATH (TensorRT 8.6.1's bindings exist for 3.6-3.11 only);" \
    "install python3.11 or set EDGEVID_API_PYTHON" >&2
  exit 1
}
py=${EDGEVID_API_PYTHON:-$(pick_python)}
cuda=${CUDA_HOME:-/usr/local/cuda}
root=${EDGEVID_API_CACHE:-$HOME/.cache/edgevid-apis}
tag=$("$py" -c 'import sys; print("py%d.%d" % sys.version_info[:2])')
cache=$root/$tag          # wheels are per CPython version, so is everything built from them
mkdir -p "$cache/wheels"
start=$SECONDS
say() { echo "setup_apis: $*" >&2; }
die() { say "FAILED: $*"; exit 1; }

# pip download for this interpreter; prints the wheel it got (or the cached one when offline)
download() {  # spec glob
  local spec=$1 glob=$2 log=$cache/wheels/pip.log
  if ! "$py" -m pip download -q --no-deps --only-binary=:all: -d "$cache/wheels" "$spec" > "$log" 2>&1; then
    say "could not download $spec ($(grep -m1 -E 'ERROR' "$log" || tail -1 "$log")); trying the cache"
  fi
  # newest cached wheel matching the glob (sort -V orders 11.10 after 11.4)
  find "$cache/wheels" -maxdepth 1 -name "$glob" | sort -V | tail -1
}

# unpack one binding wheel, stub what it links against, prove it imports; prints its folder
prepare_tensorrt() {  # spec glob
  local whl ver dir
  whl=$(download "$1" "$2")
  [ -n "$whl" ] || die "no wheel for $1 (network to PyPI needed the first time)"
  ver=$(basename "$whl" | sed -E 's/^tensorrt[a-z0-9_]*_bindings-([0-9.]+)-.*/\1/')
  dir=$cache/tensorrt/$ver
  if [ ! -f "$dir/ok" ]; then
    rm -rf "$dir" && mkdir -p "$dir"
    "$py" -m zipfile -e "$whl" "$dir"
    "$py" "$here/stubgen.py" --out "$dir/stubs" "$dir"/tensorrt_bindings/tensorrt*.so >&2
    LD_LIBRARY_PATH="$dir/stubs" PYTHONPATH="$dir" "$py" -c "import tensorrt_bindings" \
      || die "TensorRT $ver does not import over the stubs (see above)"
    touch "$dir/ok"
  fi
  say "TensorRT $ver ready in $dir"
  echo "$ver"
}

# build pycuda from its sdist against CUDA's headers; link it to a stub libcuda.so.1
prepare_pycuda() {
  local dir=$cache/pycuda sdist src so
  if [ -f "$dir/ok" ]; then say "pycuda ready in $dir"; return; fi
  [ -f "$cuda/include/cuda.h" ] || die "no $cuda/include/cuda.h: pycuda is built against CUDA's headers; set CUDA_HOME"
  rm -rf "$dir/venv" "$dir/src" "$dir/stubs" && mkdir -p "$dir/src" "$dir/stubs"
  "$py" -m venv "$dir/venv"
  "$dir/venv/bin/pip" -q install numpy pytools platformdirs mako setuptools wheel || die "pycuda's build dependencies"
  ls "$dir"/pycuda-*.tar.gz > /dev/null 2>&1 \
    || "$dir/venv/bin/pip" -q download --no-deps --no-binary=pycuda -d "$dir" pycuda > "$dir/pip.log" 2>&1 \
    || die "could not download pycuda's sdist ($(tail -1 "$dir/pip.log"))"
  sdist=$(find "$dir" -maxdepth 1 -name 'pycuda-*.tar.gz' | sort -V | tail -1)
  tar xzf "$sdist" -C "$dir/src"
  src=$(find "$dir/src" -mindepth 1 -maxdepth 1 -type d -name 'pycuda-*' | head -1)
  # An empty libcuda.so (soname libcuda.so.1) satisfies -lcuda at link time: a shared object may keep
  # undefined symbols. --no-as-needed keeps it NEEDED although it defines nothing; the real stub is made
  # below from the symbols the built module references.
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$dir/stubs/libcuda.so" -x c /dev/null
  (cd "$src" && "$dir/venv/bin/python" configure.py --cuda-root="$cuda" --cudadrv-lib-dir="$dir/stubs" > /dev/null \
    && sed -i 's/^CUDA_ENABLE_CURAND = True/CUDA_ENABLE_CURAND = False/' siteconf.py \
    && LDFLAGS="-Wl,--no-as-needed" "$dir/venv/bin/pip" install --no-build-isolation --no-deps . \
      > "$dir/build.log" 2>&1) \
    || { tail -20 "$dir/build.log" >&2 || true; die "pycuda did not build (log: $dir/build.log)"; }
  rm -f "$dir/stubs/libcuda.so"
  so=$(find "$dir/venv" -path '*site-packages/pycuda/*.so')
  # shellcheck disable=SC2086  # one argument per extension module
  "$dir/venv/bin/python" "$here/stubgen.py" --returns 34 --out "$dir/stubs" $so >&2
  LD_LIBRARY_PATH="$dir/stubs" "$dir/venv/bin/python" -c "import pycuda.driver" \
    || die "pycuda does not import over the stub libcuda.so.1"
  touch "$dir/ok"
  say "pycuda built in $dir"
}

trt8=$(prepare_tensorrt "tensorrt-bindings==8.6.1" 'tensorrt_bindings-8.6.1-*.whl')
trt10=$(prepare_tensorrt "tensorrt-cu12-bindings==10.3.*" 'tensorrt_cu12_bindings-10.3.*.whl')
trt11=$(prepare_tensorrt "tensorrt-cu13-bindings>=11,<12" 'tensorrt_cu13_bindings-11.*.whl')
prepare_pycuda

# the manifest the tests read: where each API lives and how to import it
"$py" - "$root/apis.json" "$cache" "$("$py" -c 'import sys; print(sys.executable)')" "$trt8" "$trt10" "$trt11" <<'EOF'
import json, os, sys
out, cache, python, *versions = sys.argv[1:]
trt = [{"version": v, "python": python, "path": os.path.join(cache, "tensorrt", v),
        "stubs": os.path.join(cache, "tensorrt", v, "stubs")} for v in versions]
pyc = {"python": os.path.join(cache, "pycuda", "venv", "bin", "python"), "stubs": os.path.join(cache, "pycuda", "stubs")}
tmp = out + ".tmp"
with open(tmp, "w") as f:
    json.dump({"tensorrt": trt, "pycuda": pyc}, f, indent=1)
os.replace(tmp, out)
EOF
say "done in $((SECONDS - start)) s: $root/apis.json (TensorRT $trt8, $trt10, $trt11; pycuda)"
