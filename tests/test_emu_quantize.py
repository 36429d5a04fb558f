import numpy as np
import pytest

from sqnxt_engine.emu.quantize import frac_bits, prune, quantize


@pytest.mark.parametrize("m", [1e-6, 0.3, 1.0, 3.7, 32767.0, 40000.0, 1e9])
def test_scale_uses_the_word_and_never_overflows(m):
    f = frac_bits(m)
    assert m * 2.0 ** f <= 32767 < m * 2.0 ** (f + 1)
    q = quantize(np.array([m, -m]), f)
    assert q.dtype == np.int16 and abs(int(q[0])) > 16383


def test_round_trip_error_is_half_a_step():
    a = np.random.default_rng(0).normal(size=1000)
    f = frac_bits(np.abs(a).max())
    assert np.abs(quantize(a, f) / 2.0 ** f - a).max() <= 0.5 * 2.0 ** -f + 1e-12


def test_prune_by_magnitude():
    w = np.array([[0.5, -0.1], [0.05, -2.0], [0.3, 0.2]])
    p = prune(w, 0.5)
    assert (p == 0).sum() == 3 and set(np.flatnonzero(p == 0)) == {1, 2, 5}
    assert np.array_equal(prune(w, 0.0), w)
    with pytest.raises(ValueError):
        prune(w, 1.0)


def test_prune_matches_a_stable_sort_with_ties():
    rng = np.random.default_rng(3)
    w = rng.integers(-4, 5, size=(7, 5, 3)).astype(np.float32)  # many ties
    for s in (0.1, 0.33, 0.5, 0.9):
        k = int(round(s * w.size))
        want = w.copy()
        want.flat[np.argsort(np.abs(w), axis=None, kind="stable")[:k]] = 0
        assert np.array_equal(prune(w, s), want)
