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


def _quantize_whole(a, f, bits=16):
    """quantize as one float64 copy of the whole array (what the blocks must equal)."""
    top = (1 << (bits - 1)) - 1
    q = np.clip(np.rint(np.array(a, np.float64) * 2.0 ** f), -top - 1, top)
    return q.astype(np.int16 if bits <= 16 else np.int32)


@pytest.mark.parametrize("bits", [8, 16, 24])
def test_quantize_and_its_zero_count_block_by_block_equal_the_whole(monkeypatch, bits):
    from sqnxt_engine.emu import quantize as Q
    monkeypatch.setattr(Q, "_BLOCK", 7)   # many blocks and a partial last one
    a = np.random.default_rng(2).normal(0, 0.02, (5, 3, 2, 3)).astype(np.float32)
    f = frac_bits(float(np.abs(a).max()), bits) - bits + 5   # coarse: many codes are zero
    q = quantize(a, f, bits)
    assert q.shape == a.shape and np.array_equal(q, _quantize_whole(a, f, bits))
    assert Q.quantized_zeros(a, f, bits) == np.count_nonzero(q == 0) > 0


@pytest.mark.parametrize("sparsity", [0.0, 0.4, 0.9])
def test_prune_in_place_equals_the_copy(monkeypatch, sparsity):
    from sqnxt_engine.emu import quantize as Q
    monkeypatch.setattr(Q, "_BLOCK", 5)
    rng = np.random.default_rng(3)
    w = np.round(rng.normal(size=(6, 7)), 1).astype(np.float32)   # many ties of magnitude
    want = prune(w, sparsity)
    own = w.copy()
    got = prune(own, sparsity, in_place=True)
    assert got is own and np.array_equal(got, want)
    assert (want == 0).sum() >= round(sparsity * w.size)
    with pytest.raises(ValueError, match="contiguous"):
        prune(w.T, sparsity, in_place=True)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int64])
def test_kth_magnitude_by_radix_equals_the_partition(monkeypatch, dtype):
    """The k-th smallest magnitude read block by block (a radix selection for floats) is the
    partition's, with the ties among the k smallest counted, for every k: signed zeros, ties
    and infinities included."""
    from sqnxt_engine.emu import quantize as Q
    monkeypatch.setattr(Q, "_BLOCK", 13)
    rng = np.random.default_rng(4)
    a = np.round(rng.normal(0, 3, 200), 1).astype(dtype)
    if dtype != np.int64:
        a[:6] = [-0.0, 0.0, np.inf, -np.inf, 1e-30, -2.5]
    for k in range(1, a.size + 1):
        mag = np.sort(np.abs(a))
        t, ties = Q.kth_magnitude(a, k)
        assert t == mag[k - 1] and t.dtype == a.dtype
        assert ties == k - np.count_nonzero(np.abs(a) < t)
