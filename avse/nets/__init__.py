"""Score networks: ``MODELS.build("ncsnpp", preset="tiny", **overrides)``.

:data:`MODELS` maps a config's ``model:`` name to a backbone constructor;
:data:`avse.nets.fusion.FUSIONS` holds the conditioning fusion modules.
"""
from avse.utils.registry import Registry

MODELS = Registry("model")

from avse.nets.fusion import FUSIONS  # noqa: E402
from avse.nets.ncsnpp import PRESETS, NCSNpp  # noqa: E402

MODELS.register("ncsnpp")(NCSNpp)

from avse.nets.score_model import ScoreModel  # noqa: E402

__all__ = ["MODELS", "FUSIONS", "PRESETS", "NCSNpp", "ScoreModel"]
