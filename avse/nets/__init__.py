"""Score networks: ``MODELS.build("ncsnpp", preset="tiny", **overrides)``.

:data:`MODELS` maps a config's ``model:`` name to a backbone constructor;
:data:`avse.nets.fusion.FUSIONS` holds the conditioning fusion modules (``concat``,
``xattn``, ``gated_xattn``) and :data:`avse.nets.lip_encoder.LIP_ENCODERS` the lip
encoders of audio-visual priors (``resnet_tcn``; ``resnet18_tcn``, which loads released
lip-reading weights; ``features``, on precomputed visual features); :mod:`avse.nets.lip_cond` binds an
utterance's lips into a score function at inference.
"""
from avse.utils.registry import Registry

MODELS = Registry("model")

from avse.nets.fusion import FUSIONS  # noqa: E402
from avse.nets import fusion_xattn  # noqa: E402,F401  (registers xattn, gated_xattn)
from avse.nets.lip_encoder import LIP_ENCODERS  # noqa: E402
from avse.nets.ncsnpp import PRESETS, NCSNpp  # noqa: E402

MODELS.register("ncsnpp")(NCSNpp)

from avse.nets.score_model import ScoreModel  # noqa: E402

__all__ = ["MODELS", "FUSIONS", "LIP_ENCODERS", "PRESETS", "NCSNpp", "ScoreModel"]
