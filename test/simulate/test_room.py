"""avse.simulate.room: room sampling and RIR simulation."""
import logging
import math

import numpy as np
import pytest

from avse.errors import InputError
from avse.simulate.room import DEFAULT_ROOM, RoomSpec, measure_t60, room_config, sample_room, simulate_rirs

FS = 16000
C = 343.0


def test_sampled_rooms_within_ranges():
    cfg = {"n_mics": 2}
    for seed in range(60):
        spec = sample_room(cfg, np.random.default_rng(seed), n_sources=2)
        L, W, H = spec.dims
        assert 5 <= L <= 10 and 5 <= W <= 10 and 3 <= H <= 4
        assert 0.1 <= spec.t60 <= 1.0 and 0 < spec.absorption <= 0.99 and spec.max_order >= 0
        mics = np.array(spec.mics)
        assert mics.shape == (2, 3)
        assert 0.15 - 1e-9 <= np.linalg.norm(mics[0] - mics[1]) <= 0.17 + 1e-9
        centre = mics.mean(axis=0)
        assert 0.9 <= centre[2] <= 1.8
        assert abs(centre[0] - L / 2) <= 0.5 + 1e-9 and abs(centre[1] - W / 2) <= 0.5 + 1e-9
        srcs = np.array(spec.sources)
        assert srcs.shape == (2, 3)
        for p in list(srcs) + list(mics):
            assert all(0.3 - 1e-9 <= p[i] <= spec.dims[i] - 0.3 + 1e-9 for i in range(3))
        for p in srcs:
            assert 0.66 - 1e-9 <= np.hypot(*(p[:2] - centre[:2])) <= 2.0 + 1e-9
            assert 1.2 <= p[2] <= 2.0
        assert np.linalg.norm(srcs[0] - srcs[1]) >= 0.5
        # JSON round trip
        back = RoomSpec.from_json(spec.to_json())
        np.testing.assert_allclose(back.dims, spec.dims, atol=1e-4)
        np.testing.assert_allclose(back.sources, spec.sources, atol=1e-4)
        assert back.max_order == spec.max_order and " " not in spec.to_json()


def test_sampling_is_deterministic_and_configurable():
    a = sample_room(None, np.random.default_rng(3))
    b = sample_room(None, np.random.default_rng(3))
    assert a == b and a.n_mics == 1 and a.n_sources == 1
    spec = sample_room({"t60": 0.5, "length": 6.0, "max_order": 5}, np.random.default_rng(0))
    assert spec.t60 == 0.5 and spec.dims[0] == 6.0 and spec.max_order == 5
    with pytest.raises(InputError, match="unknown keys"):
        room_config({"lenght": [5, 6]})
    with pytest.raises(InputError, match="t60"):
        room_config({"t60": [1.0, 0.5]})
    with pytest.raises(InputError, match="could not place source"):
        sample_room({"length": 5.0, "width": 5.0, "src_dist": [4.0, 4.5]}, np.random.default_rng(0))
    assert set(DEFAULT_ROOM) >= {"length", "width", "height", "t60", "n_mics", "src_dist", "max_order"}


def test_t60_too_short_for_the_room_is_clipped():
    spec = sample_room({"length": 10.0, "width": 10.0, "height": 4.0, "t60": 0.1}, np.random.default_rng(0))
    assert spec.absorption == pytest.approx(0.99)


@pytest.fixture(scope="module")
def rirs_03():
    spec = sample_room({"t60": 0.3, "n_mics": 2, "length": [5, 6], "width": [5, 6]},
                       np.random.default_rng(11), n_sources=2)
    return spec, simulate_rirs(spec, FS)


def test_rir_shapes_and_measured_t60(rirs_03):
    spec, (rirs, direct, t60) = rirs_03
    assert rirs.dtype == np.float32 and direct.dtype == np.float32
    assert rirs.shape[:2] == (2, 2) and direct.shape == rirs.shape
    assert rirs.shape[2] > 0.2 * FS
    assert 0.2 <= t60 <= 0.45


def test_direct_path_aligned_with_first_peak(rirs_03):
    spec, (rirs, direct, _) = rirs_03
    peaks = {}
    for k in range(2):
        for m in range(2):
            pk = int(np.argmax(np.abs(direct[k, m])))
            # the reverberant RIR's first peak is the direct path, at the same sample and level
            first = int(np.argmax(np.abs(rirs[k, m]) > 0.5 * np.abs(rirs[k, m]).max()))
            assert abs(first - pk) <= 1
            assert rirs[k, m, pk] == pytest.approx(direct[k, m, pk], rel=0.05)
            assert np.all(direct[k, m, pk + 100:] == 0) or np.max(np.abs(direct[k, m, pk + 100:])) < 1e-3
            peaks[k, m] = pk
    # delays and attenuations follow the geometry
    d = {(k, m): np.linalg.norm(np.subtract(spec.sources[k], spec.mics[m])) for k in range(2) for m in range(2)}
    for m in range(2):
        assert abs((peaks[1, m] - peaks[0, m]) - (d[1, m] - d[0, m]) / C * FS) <= 1.0
        e = [float(np.sum(direct[k, m].astype(np.float64) ** 2)) for k in range(2)]
        assert e[0] / e[1] == pytest.approx((d[1, m] / d[0, m]) ** 2, rel=0.15)


def test_max_order_zero_and_cap():
    spec = sample_room({"t60": 0.4, "max_order": 0}, np.random.default_rng(1))
    rirs, direct, t60 = simulate_rirs(spec, FS)
    np.testing.assert_array_equal(rirs, direct)
    assert math.isnan(t60)
    full = sample_room({"t60": 0.4}, np.random.default_rng(1))
    capped = sample_room({"t60": 0.4, "max_order": 3}, np.random.default_rng(1))
    assert capped.max_order == 3 < full.max_order and capped.dims == full.dims == spec.dims
    r3, d3, _ = simulate_rirs(capped, FS)
    rf, _, _ = simulate_rirs(full, FS)
    energy = lambda h: float(np.sum(h.astype(np.float64) ** 2))  # noqa: E731
    assert energy(d3) < energy(r3) < energy(rf)
    assert r3.shape[2] < rf.shape[2]


def test_measure_t60_failure_is_nan_with_warning(caplog):
    with caplog.at_level(logging.WARNING):
        assert math.isnan(measure_t60(np.zeros(800), FS))
    assert "T60 measurement" in caplog.text
