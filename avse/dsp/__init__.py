"""Signal processing front-ends (STFT, compression, padding)."""
from avse.dsp.stft import SpectralFrontEnd

__all__ = ["SpectralFrontEnd"]
