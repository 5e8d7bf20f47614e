#!/usr/bin/env bash
# Every GPU test of the project in one run, on a machine with a CUDA GPU (an x86 GPU server or a Jetson).
#
#   tests/gpu/run.sh [PYCUDA_SDIST]      e.g. tests/gpu/run.sh /tmp/pycuda-2025.1.tar.gz
#
# pycuda is built here against this machine's CUDA (from the sdist given, else from PyPI) into a venv that
# sees the system's packages (numpy, and TensorRT where it is installed), then the tests marked gpu and trt
# run; the trt ones skip with their reason where TensorRT is absent. What it prints goes in the note.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${EDGEVID_GPU_VENV:-/tmp/edgevid-gpu-venv}"
CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
export PATH="$CUDA_HOME/bin:$PATH"

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv
command -v nvcc >/dev/null || { echo "nvcc not found under $CUDA_HOME/bin: set CUDA_HOME" >&2; exit 2; }

python3 -m venv --system-site-packages "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
if ! "$VENV/bin/python" -c "import pycuda.driver" 2>/dev/null; then
  echo "building pycuda against $(nvcc --version | tail -1)"
  "$VENV/bin/python" -m pip install -q "${1:-pycuda}"
fi
"$VENV/bin/python" -m pip install -q -e ".[dev]" --no-deps
"$VENV/bin/python" -m pip install -q numpy pytest onnxruntime opencv-python-headless onnx
"$VENV/bin/python" -c "import pycuda.driver as d; d.init(); print('pycuda', __import__('pycuda').VERSION_TEXT, 'GPUs', d.Device.count())"
"$VENV/bin/python" -c "import tensorrt as t; print('TensorRT', t.__version__)" 2>/dev/null || echo "TensorRT: not installed (trt tests skip)"
exec "$VENV/bin/python" -m pytest -q -m "gpu or trt" -p no:cacheprovider tests
