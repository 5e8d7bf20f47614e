"""edgevid: video action recognition from training to NVIDIA Jetson (SlowFast, PreRNN-SIH, LiteEval)."""
from setuptools import find_packages, setup

EXTRAS = {
    # training / export side (workstation)
    "export": ["torch", "torchvision", "onnx>=1.14", "onnxsim>=0.4", "onnxruntime>=1.16", "matplotlib", "tqdm",
               "scipy", "scikit-learn"],
    # device side on a CPU: the embedded default backend
    "cpu": ["onnxruntime>=1.16", "tqdm"],
    # decoding, capture and annotated video (on a Jetson use JetPack's OpenCV instead: it has GStreamer)
    "video": ["opencv-python-headless>=4.5"],
    # Jetson: TensorRT comes from JetPack (never pip); pycuda drives it
    "jetson": ["pycuda"],
}
EXTRAS["dev"] = sorted(set(EXTRAS["export"] + EXTRAS["cpu"] + EXTRAS["video"] + ["pytest>=7", "ruff", "vermin", "pytorchvideo", "hypothesis"]))

setup(
    name="edgevid",
    version="0.1.0",
    description=__doc__,
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["edgevid", "edgevid.*"]),
    python_requires=">=3.8",
    install_requires=["numpy>=1.19"],
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["edgevid = edgevid.cli:main"]},
)
