"""The vectorised center math equals upstream's own update_center (the real function,
read from the newest sdist's tools/program.py) within 1e-5."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import upstream
from conftest import SDIST_RELEASES
from centerkit import stock
from centerkit.dropins import kit_export

paddle = pytest.importorskip("paddle", reason="paddlepaddle is needed to run upstream's update_center")


@pytest.fixture(scope="module")
def stock_update_center(tmp_path_factory):
    rel = SDIST_RELEASES[-1]
    tree = upstream.sdist_tree(rel, str(tmp_path_factory.mktemp("sdist")))
    return stock.stock_update_center(os.path.join(tree, "tools", "program.py"))


@st.composite
def batches(draw):
    classes = draw(st.integers(2, 12))
    width = draw(st.integers(1, 6))
    steps = draw(st.integers(1, 7))
    out = []
    for _ in range(draw(st.integers(1, 4))):
        b = draw(st.integers(1, 5))
        seed = draw(st.integers(0, 2**32 - 1))
        rng = np.random.default_rng(seed)
        feats = rng.normal(size=(b, steps, width)).astype(np.float32) * 10
        # few classes -> repeated classes; class 0 is CTC's blank
        idx = rng.integers(0, classes, size=(b, steps))
        keep = rng.random(b) < 0.7
        out.append((feats, idx, keep))
    return classes, width, out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches())
def test_accumulator_equals_upstream_running_mean(stock_update_center, case):
    classes, width, data = case
    acc = kit_export.center_math.CenterAccumulator(classes, width)
    stock = {}
    for feats, idx, keep in data:
        logits = np.eye(classes, dtype=np.float32)[idx]  # argmax == idx
        labels = [("t%d" % i, 1.0) for i in range(len(keep))]
        preds = [(lab if k else "wrong", 1.0) for lab, k in zip(labels, keep)]
        stock = stock_update_center(stock, (preds, labels), (paddle.to_tensor(feats), paddle.to_tensor(logits)))
        acc.update(feats, idx, kit_export.center_math.correct_mask((preds, labels)))
    ours = acc.centers()
    assert sorted(ours) == sorted(int(k) for k in stock)
    for k, (mean, count) in stock.items():
        assert acc.counts[int(k)] == count
        np.testing.assert_allclose(ours[int(k)], mean, rtol=1e-5, atol=1e-5)


def test_center_format_is_what_centerloss_loads():
    acc = kit_export.center_math.CenterAccumulator(5, 3)
    feats = np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3)
    acc.update(feats, np.array([[0, 1, 1, 4], [2, 2, 0, 0]]), np.array([True, False]))
    centers = acc.centers()
    assert list(centers) == [0, 1, 4]
    assert all(type(k) is int for k in centers)
    assert all(v.dtype == np.float32 and v.shape == (3,) for v in centers.values())
    np.testing.assert_array_equal(centers[1], (feats[0, 1] + feats[0, 2]) / 2)
    assert (acc.images_seen, acc.images_used) == (2, 1)


def test_no_kept_sample_adds_nothing_and_memory_does_not_grow():
    acc = kit_export.center_math.CenterAccumulator(7, 4)
    shapes = (acc.sums.shape, acc.counts.shape)
    rng = np.random.default_rng(0)
    for _ in range(50):
        acc.update(rng.normal(size=(8, 5, 4)).astype(np.float32), rng.integers(0, 7, (8, 5)), np.zeros(8, bool))
    assert acc.centers() == {} and acc.images_seen == 400 and acc.images_used == 0
    assert (acc.sums.shape, acc.counts.shape) == shapes


def float64_means(data, classes):
    """The definition, in float64: mean feature per argmax class over the kept samples."""
    sums, counts = np.zeros((classes, data[0][0].shape[-1])), np.zeros(classes, np.int64)
    for feats, idx, keep in data:
        for f, i in zip(feats[keep].reshape(-1, feats.shape[-1]), idx[keep].reshape(-1)):
            sums[i] += f
            counts[i] += 1
    return {c: sums[c] / counts[c] for c in np.flatnonzero(counts)}, counts


@pytest.mark.parametrize("fold_rows", [0, 3, 1024])
@pytest.mark.parametrize("kernel", ["scipy csr", "numpy add.at"])
def test_sums_fold_into_float64_whatever_the_kernel(monkeypatch, fold_rows, kernel):
    """Folding float32 partials early or late, and either kernel, give the float64 means."""
    if kernel == "numpy add.at":
        monkeypatch.setattr(kit_export.center_math, "csr_kernel", lambda: None)
    else:
        assert kit_export.center_math.csr_kernel() is not None, "scipy's CSR kernel is missing: the export would run ~30x slower"
    rng = np.random.default_rng(fold_rows)
    # class 0 (blank) takes most steps, as in a real CTC argmax; unkept samples are mixed in
    data = [(rng.normal(size=(6, 9, 5)).astype(np.float32) * 3, np.where(rng.random((6, 9)) < 0.6, 0, rng.integers(0, 40, (6, 9))), rng.random(6) < 0.7) for _ in range(30)]
    acc = kit_export.center_math.CenterAccumulator(40, 5, fold_rows=fold_rows)
    for feats, idx, keep in data:
        acc.update(feats, idx, keep)
        assert (acc._pending <= fold_rows).all()
    means, counts = float64_means(data, 40)
    ours = acc.centers()
    np.testing.assert_array_equal(acc.counts, counts)
    assert sorted(ours) == sorted(int(c) for c in means)
    for c, mean in means.items():
        np.testing.assert_allclose(ours[int(c)], mean, rtol=1e-6, atol=1e-6)


def test_order_of_batches_changes_only_rounding():
    rng = np.random.default_rng(1)
    parts = [(rng.normal(size=(3, 4, 2)).astype(np.float32), rng.integers(0, 6, (3, 4)), rng.random(3) < 0.8) for _ in range(6)]
    forward, backward = kit_export.center_math.CenterAccumulator(6, 2), kit_export.center_math.CenterAccumulator(6, 2)
    for p in parts:
        forward.update(*p)
    for p in reversed(parts):
        backward.update(*p)
    assert sorted(forward.centers()) == sorted(backward.centers())
    for k, v in forward.centers().items():
        np.testing.assert_allclose(backward.centers()[k], v, rtol=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 40), st.integers(1, 5), st.integers(0, 2**32 - 1), st.booleans())
def test_closest_pairs_are_the_smallest_distances_of_all_pairs(n, width, seed, ties):
    """Against every pair's distance, brute force in float64: the same pairs in the same
    order (ties: integer-valued centers, where the order among equal distances is the class
    order), distances and cosines within 1e-9."""
    rng = np.random.default_rng(seed)
    values = rng.integers(-2, 3, (n, width)) if ties else rng.normal(size=(n, width))
    classes = sorted(rng.choice(10 * n, n, replace=False).tolist())
    centers = {c: values[i].astype(np.float32) for i, c in enumerate(classes)}
    got = kit_export.report.closest_pairs(centers, None, top=7)
    m = values.astype(np.float32).astype(np.float64)
    want = sorted((float(np.linalg.norm(m[i] - m[j])), classes[i], classes[j]) for i in range(n) for j in range(i + 1, n))[:7]
    assert [tuple(p["classes"]) for p in got] == [(a, b) for _, a, b in want]
    assert np.allclose([p["distance"] for p in got], [d for d, _, _ in want], rtol=1e-9, atol=1e-12)
    for p in got:
        a, b = (m[classes.index(c)] for c in p["classes"])
        norms = np.linalg.norm(a) * np.linalg.norm(b)
        assert p["cosine"] is None if norms == 0 else abs(p["cosine"] - a @ b / norms) < 1e-9


def test_closest_pairs_name_the_blank_and_the_characters():
    centers = {0: np.zeros(2, np.float32), 1: np.array([1, 0], np.float32), 2: np.array([1, 0.1], np.float32),
               5: np.array([9, 9], np.float32)}
    pairs = kit_export.report.closest_pairs(centers, ["blank", "O", "0", " "])
    assert [p["characters"] for p in pairs[:2]] == [["O", "0"], ["CTC blank", "O"]]
    assert pairs[-1]["characters"][1] == "class 5 (out of the dictionary)"
    lines = kit_export.report.format_closest(pairs)
    assert '"O" (class 1)' in lines[1] and '"0" (class 2)' in lines[1] and "CTC blank (class 0)" in lines[2]
