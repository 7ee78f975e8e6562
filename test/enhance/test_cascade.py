"""``method: cascade``: methods in sequence, each on every output of the previous."""
import pytest
import torch

from avse.diffusion.sampler import gaussian_score
from avse.diffusion.sde import OUVE
from avse.dsp.stft import SpectralFrontEnd
from avse.enhance import ENHANCERS
from avse.errors import InputError

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread


def _setup():
    g = torch.Generator().manual_seed(0)
    fe = SpectralFrontEnd(n_fft=126, hop=32)
    X = fe(torch.randn(4000, generator=g))
    var = (X / float(X.abs().max())).abs().pow(2) + 1e-3
    sde = OUVE()
    return fe, X, sde, gaussian_score(torch.zeros(()), var, sde)


SEP = {"method": "separate", "method_conf": {"n_steps": 4, "n_corrector": 0}}
DER = {"method": "buddy", "method_conf": {"n_steps": 4, "n_corrector": 0, "room_updates": 1}}


def test_separate_then_dereverberate_each_source():
    fe, X, sde, score = _setup()
    casc = ENHANCERS.build("cascade", steps=[SEP, DER])
    assert casc.n_sources == 2 and set(casc.needs) == {"frontend", "fs"} and casc.needs_grad
    S = casc(score, sde, X, generator=torch.Generator().manual_seed(1), frontend=fe, fs=16000)
    assert S.shape == (2, *X.shape) and torch.isfinite(torch.view_as_real(S)).all()
    st = casc.last_stats
    # separation: 4 steps; then one room fit per source: 4 steps each
    assert [len(s) for s in st["steps"]] == [1, 2] and st["nfe"] == 4 + 2 * 4
    assert 0.05 <= st["t60"] <= 2.0
    # the second step runs on what the first returned: redoing it by hand gives the same
    sep = ENHANCERS.build("separate", **SEP["method_conf"])
    der = ENHANCERS.build("buddy", **DER["method_conf"])
    g = torch.Generator().manual_seed(1)
    S1 = sep(score, sde, X, generator=g, frontend=fe)
    ref = torch.stack([der(score, sde, S1[k], generator=g, frontend=fe, fs=16000) for k in range(2)])
    torch.testing.assert_close(S, ref)


class TalkerScores:
    """A score bound to K talkers (as :class:`avse.nets.lip_cond.ConditionedScore` with per-source
    lips): row ``j * K + k`` scaled by ``1 + k``; records the talkers of each call."""

    def __init__(self, score, talkers=(0, 1), calls=None):
        self.score, self.talkers, self.n_sources = score, tuple(talkers), len(talkers)
        self.calls = [] if calls is None else calls

    def select(self, sources):
        return TalkerScores(self.score, [self.talkers[k] for k in sources], self.calls)

    def __call__(self, x, t):
        self.calls.append(self.talkers)
        w = torch.tensor([1.0 + k for k in self.talkers]).repeat(x.shape[0] // self.n_sources)
        return self.score(x, t) * w[:, None, None]


def test_each_step_gets_the_lips_of_the_talkers_it_restores():
    fe, X, sde, score = _setup()
    casc = ENHANCERS.build("cascade", steps=[SEP, DER])
    bound = TalkerScores(score)
    S = casc(bound, sde, X, generator=torch.Generator().manual_seed(1), frontend=fe, fs=16000)
    # the separation with both talkers' lips, then source k's room fit with talker k's alone
    assert bound.calls == [(0, 1)] * 4 + [(0,)] * 4 + [(1,)] * 4
    sep = ENHANCERS.build("separate", **SEP["method_conf"])
    der = ENHANCERS.build("buddy", **DER["method_conf"])
    g = torch.Generator().manual_seed(1)
    S1 = sep(TalkerScores(score), sde, X, generator=g, frontend=fe)
    ref = torch.stack([der(TalkerScores(score, [k]), sde, S1[k], generator=g, frontend=fe, fs=16000)
                       for k in range(2)])
    torch.testing.assert_close(S, ref)
    # a one-source step on the mixture of both talkers has no talker's lips
    first = ENHANCERS.build("cascade", steps=[DER, SEP])
    with pytest.raises(InputError, match="step 1 .*1 source.*2 talkers.*separation first"):
        first(TalkerScores(score), sde, X, frontend=fe, fs=16000)
    with pytest.raises(InputError, match="conditions 3 sources"):
        casc(TalkerScores(score, (0, 1, 2)), sde, X, frontend=fe, fs=16000)


def test_one_source_cascade_returns_one_spectrogram():
    fe, X, sde, score = _setup()
    plus = {"method": "udiffse_plus", "method_conf": {"n_steps": 3, "n_corrector": 0, "n_samples": 1}}
    casc = ENHANCERS.build("cascade", steps=[plus, plus])
    S = casc(score, sde, X, generator=torch.Generator().manual_seed(0))
    assert S.shape == X.shape and casc.n_sources == 1 and casc.last_stats["t60"] is None


@pytest.mark.parametrize("steps, match", [
    (None, "at least two"), ([SEP], "at least two"), ([SEP, {"method_conf": {}}], "step 2"),
    ([SEP, {"method": "cascade", "method_conf": {}}], "flat"),
    ([SEP, {"method": "bogus"}], "bogus"),
])
def test_bad_cascades_are_rejected(steps, match):
    with pytest.raises(InputError, match=match):
        ENHANCERS.build("cascade", steps=steps)
