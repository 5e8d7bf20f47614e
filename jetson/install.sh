#!/usr/bin/env bash
# Install edgevid's device side on a Jetson (jetson/README.md): JetPack 5.1 (AGX Xavier: L4T R35, Python 3.8,
# TensorRT 8.5) or JetPack 6.x (Orin: L4T R36, Python 3.10, TensorRT 8.6 / 10.3).
#
#   jetson/install.sh [--venv DIR] [--ort-wheel FILE|URL] [--no-ort]
#
# - a venv with --system-site-packages, so JetPack's TensorRT (python3-libnvinfer) and its GStreamer-enabled
#   OpenCV (python3-opencv) are the ones imported: TensorRT never comes from pip, and pip's OpenCV has no
#   GStreamer (no CSI cameras, no nvv4l2decoder);
# - edgevid itself with --no-deps (no desktop torch, no pip OpenCV), then numpy only if JetPack's is too old;
# - pycuda built from source against the device's CUDA (/usr/local/cuda);
# - libedgevid_preproc (GPU preprocessing, cmake/) built with JetPack's nvcc for this GPU's SM;
# - onnxruntime (the CPU backend and verify's reference): PyPI's CPU wheel, or the GPU wheel of the
#   Jetson Zoo for your JetPack given with --ort-wheel.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
venv=$HOME/edgevid-venv
ort_wheel=
ort=yes
cuda=${CUDA_HOME:-/usr/local/cuda}
release=${NV_TEGRA_RELEASE:-/etc/nv_tegra_release}   # overridable only so that the tests can fake a Jetson
py=/usr/bin/python3   # JetPack's Python: the one its TensorRT and OpenCV bindings are built for

say() { echo "install: $*" >&2; }
fail() { echo "install: $1" >&2; [ -n "${2:-}" ] && echo "  $2" >&2; exit 2; }

parse_args() {
  while [ $# -gt 0 ]; do
    case $1 in
      --venv) venv=${2:?--venv needs a folder}; shift 2 ;;
      --ort-wheel) ort_wheel=${2:?--ort-wheel needs a file or URL}; shift 2 ;;
      --no-ort) ort=no; shift ;;
      -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
      *) fail "unknown argument $1" "see: $0 --help" ;;
    esac
  done
}

# L4T R35 = JetPack 5.x, R36 = JetPack 6.x; anything else is not a supported Jetson.
detect_jetpack() {
  [ -r "$release" ] || fail "this is not a Jetson: $release is missing" \
    "run jetson/install.sh on the Jetson; on a workstation use: pip install -e \".[dev]\""
  local l4t
  l4t=$(sed -n 's/^# R\([0-9]*\) (release).*/\1/p' "$release")
  case $l4t in
    35) jetpack=5 ;;
    36) jetpack=6 ;;
    *) fail "L4T R${l4t:-?} is not supported ($(head -1 "$release"))" \
         "edgevid supports JetPack 5.1 (L4T R35, Xavier) and JetPack 6.x (L4T R36, Orin)" ;;
  esac
  say "L4T R$l4t: JetPack $jetpack, $($py --version 2>&1)"
}

# What must come from JetPack (apt), checked before anything is installed.
check_jetpack_packages() {
  local missing=()
  $py -c "import tensorrt" 2>/dev/null || missing+=("python3-libnvinfer (TensorRT's Python bindings)")
  $py -c "import cv2" 2>/dev/null || missing+=("python3-opencv (JetPack's OpenCV with GStreamer)")
  $py -c "import venv, ensurepip" 2>/dev/null || missing+=("python3-venv")
  [ -f "$($py -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" ] \
    || missing+=("python3-dev (pycuda is compiled)")
  [ -x "$cuda/bin/nvcc" ] || missing+=("the CUDA toolkit in $cuda (nvidia-jetpack / cuda-toolkit)")
  if [ ${#missing[@]} -gt 0 ]; then
    printf 'install: missing from JetPack: %s\n' "${missing[@]}" >&2
    fail "install them first" "sudo apt-get install nvidia-jetpack python3-venv python3-dev (JetPack's apt repository)"
  fi
}

make_venv() {
  [ -x "$venv/bin/python" ] || $py -m venv --system-site-packages "$venv"
  # JetPack's OpenCV and TensorRT are built against numpy 1.x: numpy 2 (which onnxruntime or pycuda would
  # pull in on Python 3.10) breaks them. Every pip call below keeps to numpy<2.
  echo "numpy<2" > "$venv/constraints.txt"
  export PIP_CONSTRAINT=$venv/constraints.txt
  "$venv/bin/python" -m pip install -q --upgrade pip wheel setuptools  # pip picks the newest for Python 3.8
  "$venv/bin/python" -m pip install -q --no-deps -e "$repo"
  # JetPack 5's numpy (1.17) is older than edgevid needs (setup.py: numpy>=1.19)
  "$venv/bin/python" -c "import numpy, sys; sys.exit(tuple(map(int, numpy.__version__.split('.')[:2])) < (1, 19))" \
    || "$venv/bin/python" -m pip install -q "numpy>=1.19"
  "$venv/bin/python" -m pip install -q tqdm
}

install_pycuda() {
  # pycuda has no aarch64 wheels: it compiles (a few minutes) against the device's CUDA
  PATH=$cuda/bin:$PATH CUDA_ROOT=$cuda CPATH=$cuda/include:${CPATH:-} LIBRARY_PATH=$cuda/lib64:${LIBRARY_PATH:-} \
    "$venv/bin/python" -m pip install -q "pycuda" || fail "pycuda did not build against $cuda" \
    "check that $cuda/bin/nvcc runs and python3-dev is installed"
}

install_onnxruntime() {
  [ "$ort" = yes ] || return 0
  if [ -z "$ort_wheel" ]; then
    say "onnxruntime: PyPI's CPU wheel (for the GPU one, pass --ort-wheel with the Jetson Zoo wheel of JetPack $jetpack)"
  fi
  "$venv/bin/python" -m pip install -q "${ort_wheel:-onnxruntime}" || fail "onnxruntime did not install" \
    "pass --ort-wheel FILE (Jetson Zoo, elinux.org/Jetson_Zoo#ONNX_Runtime) or --no-ort"
}

# GPU preprocessing (cmake/README.md): libedgevid_preproc built with JetPack's nvcc for this Jetson's SM
# (Xavier 7.2, Orin 8.7) and installed into edgevid/_native, where the runtime looks for it.
build_preproc() {
  command -v cmake >/dev/null || fail "cmake is missing (GPU preprocessing is built with it)" "sudo apt-get install cmake"
  local sm
  sm=$(PATH=$cuda/bin:$PATH "$venv/bin/python" -c \
    "import pycuda.driver as d; d.init(); print('%d%d' % d.Device(0).compute_capability())") \
    || fail "could not read the GPU's SM through pycuda" "check the GPU with jetson/check-device.sh"
  say "libedgevid_preproc: building for SM $sm"
  CUDACXX=$cuda/bin/nvcc cmake -S "$repo/cmake" -B "$repo/build/native" -DCMAKE_CUDA_ARCHITECTURES="$sm" \
    -DEDGEVID_WITH_CUDA=ON >/dev/null && cmake --build "$repo/build/native" --parallel "$(nproc)" >/dev/null \
    && cmake --install "$repo/build/native" >/dev/null \
    || fail "libedgevid_preproc did not build" "run: cmake -S cmake -B build/native && cmake --build build/native (cmake/README.md)"
}

# The venv must see JetPack's TensorRT and OpenCV, not pip copies, and pycuda must import.
check_install() {
  "$venv/bin/python" - "$venv" <<'EOF'
import os
import sys
import cv2, numpy, pycuda, tensorrt
venv = os.path.realpath(sys.argv[1])
for module, package in ((cv2, "python3-opencv"), (tensorrt, "python3-libnvinfer")):
    if os.path.realpath(module.__file__).startswith(venv + os.sep):
        sys.exit("install: %s comes from pip inside the venv (%s); JetPack's must be used: pip uninstall it, "
                 "then check that %s is installed" % (module.__name__, module.__file__, package))
gst = [ln for ln in cv2.getBuildInformation().splitlines() if "GStreamer" in ln]
print("TensorRT %s, OpenCV %s (GStreamer: %s), numpy %s, pycuda %s" % (
    tensorrt.__version__, cv2.__version__, gst[0].split(":", 1)[1].strip() if gst else "?",
    numpy.__version__, pycuda.VERSION_TEXT))
EOF
  "$venv/bin/edgevid" --help > /dev/null
  "$venv/bin/python" -c "from edgevid import native; print('GPU preprocessing:', native.load().describe())"
}

main() {
  parse_args "$@"
  detect_jetpack
  check_jetpack_packages
  make_venv
  install_pycuda
  install_onnxruntime
  build_preproc
  check_install
  say "done: source $venv/bin/activate; then jetson/check-device.sh"
}

main "$@"
