"""avse: unsupervised diffusion-based speech restoration, audio-only and audio-visual.

Importing the package is light (no torch): shell tools such as utils/run.pl use the
standard-library parts of it.
"""
from avse.version import __version__

__all__ = ["__version__"]
