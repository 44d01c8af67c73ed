"""The kit's training loss (dropin/ppocr/losses/kit_center_loss.py, at that path in a
patched tree) against upstream CenterLoss on the same (features, logits).

- with PADDLEOCR_REPO: upstream's own ppocr/losses/center_loss.py of every series' first
  release, read from the clone's history (the PyPI sdists carry no ppocr/losses);
- always: the dense (B*T) x C formula of upstream written in numpy float64.
Values within 1e-6 relative, feature gradients within 1e-5, several shapes and dtypes.
"""

import importlib.util
import os
import pickle
import subprocess

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import upstream
from conftest import TABLE, first_of

paddle = pytest.importorskip("paddle")

KIT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location("kit_center_loss", os.path.join(KIT, "dropin", "ppocr", "losses", "kit_center_loss.py"))
kcl = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kcl)

UPSTREAM_RELEASES = [first_of(s) for s in dict.fromkeys(r.series for r in TABLE)]  # one per series
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def upstream_center_loss(release, tmp_path):
    """Upstream's CenterLoss class of a release, from PADDLEOCR_REPO's history."""
    source, why = upstream.clone_source()
    if source is None:
        pytest.skip(why)
    rev = upstream.release_revision(source, release)
    if rev is None:
        pytest.skip("%s lacks %s" % (source, release))
    text = subprocess.run(["git", "--git-dir", source, "show", "%s:ppocr/losses/center_loss.py" % rev],
                          capture_output=True, text=True, check=True).stdout
    path = tmp_path / ("center_loss_%s.py" % release.replace(".", "_"))
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(path.stem, str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CenterLoss


def case(data, max_classes=60):
    b, t = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 12))
    c, d = data.draw(st.integers(2, max_classes)), data.draw(st.integers(1, 40))
    dtype = data.draw(st.sampled_from(["float32", "float64"]))
    seed = data.draw(st.integers(0, 2**31 - 1))
    scale = data.draw(st.sampled_from([0.01, 1.0, 30.0]))
    rng = np.random.default_rng(seed)
    feats = (rng.standard_normal((b, t, d)) * scale).astype(dtype)
    logits = rng.standard_normal((b, t, c)).astype(dtype)
    centers = {i: (rng.standard_normal(d) * scale).astype(np.float32) for i in range(c)}
    return feats, logits, centers


def kit_value_and_grad(feats, logits, centers_pkl, num_classes, dim):
    classes, centers = kcl.read_centers(centers_pkl, num_classes, dim)
    rows = np.full(num_classes, -1, np.int64)
    rows[classes] = np.arange(len(classes))
    f = paddle.to_tensor(feats, stop_gradient=False)
    loss = kcl.center_loss_value(f, paddle.to_tensor(logits), paddle.to_tensor(rows), paddle.to_tensor(centers), num_classes)
    loss.backward()
    return float(loss), f.grad.numpy().astype(np.float64)


def dense_reference(feats, logits, centers, num_classes):
    """Upstream's formula in numpy float64: distance matrix, one-hot mask, clip, / (B*T)."""
    f = feats.reshape(-1, feats.shape[-1]).astype(np.float64)
    label = logits.reshape(-1, logits.shape[-1]).argmax(1)
    c = np.stack([centers[i] for i in range(num_classes)]).astype(np.float64)
    dist = (f ** 2).sum(1, keepdims=True) + (c ** 2).sum(1)[None] - 2 * f @ c.T
    mask = np.arange(num_classes)[None] == label[:, None]
    value = np.clip(dist * mask, 1e-12, 1e12).sum() / len(f)
    inside = (dist[np.arange(len(f)), label] > 1e-12) & (dist[np.arange(len(f)), label] < 1e12)
    grad = 2 * (f - c[label]) * inside[:, None] / len(f)
    return value, grad.reshape(feats.shape)


@pytest.mark.parametrize("release", UPSTREAM_RELEASES)
def test_equals_upstream_center_loss(release, tmp_path):
    CenterLoss = upstream_center_loss(release, tmp_path)

    @SETTINGS
    @given(st.data())
    def check(data):
        feats, logits, centers = case(data)
        c, d = logits.shape[-1], feats.shape[-1]
        pkl = str(tmp_path / "c.pkl")
        with open(pkl, "wb") as f:
            pickle.dump(centers, f)
        up = CenterLoss(num_classes=c, feat_dim=d, center_file_path=pkl)
        x = paddle.to_tensor(feats, stop_gradient=False)
        expected = up((x, paddle.to_tensor(logits)), None)["loss_center"]
        expected.backward()
        got, grad = kit_value_and_grad(feats, logits, pkl, c, d)
        assert got == pytest.approx(float(expected), rel=1e-6)
        np.testing.assert_allclose(grad, x.grad.numpy().astype(np.float64), rtol=1e-5, atol=1e-5 * max(1.0, np.abs(grad).max()))

    check()


@SETTINGS
@given(st.data())
def test_equals_upstream_formula(tmp_path, data):
    feats, logits, centers = case(data)
    c, d = logits.shape[-1], feats.shape[-1]
    pkl = str(tmp_path / "c.pkl")
    with open(pkl, "wb") as f:
        pickle.dump(centers, f)
    expected, expected_grad = dense_reference(feats, logits, centers, c)
    got, grad = kit_value_and_grad(feats, logits, pkl, c, d)
    assert got == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(grad).max()))


def test_classes_without_a_center_add_nothing(tmp_path):
    rng = np.random.default_rng(0)
    feats, logits = rng.standard_normal((2, 5, 8)).astype(np.float32), rng.standard_normal((2, 5, 6)).astype(np.float32)
    label = logits.reshape(-1, 6).argmax(1)
    present = sorted(set(label.tolist()))[:-1]  # one recognised class left without a center
    centers = {i: rng.standard_normal(8).astype(np.float32) for i in present}
    with open(tmp_path / "c.pkl", "wb") as f:
        pickle.dump(centers, f)
    got, _ = kit_value_and_grad(feats, logits, str(tmp_path / "c.pkl"), 6, 8)
    f = feats.reshape(-1, 8).astype(np.float64)
    keep = np.isin(label, present)
    d = np.array([((f[i] - centers[label[i]]) ** 2).sum() if keep[i] else 0.0 for i in range(len(f))])
    assert got == pytest.approx(np.clip(d, 1e-12, None)[keep].sum() / len(f) + 5e-12, rel=1e-9)


# -- the wrapper: what the config's own loss sees, which sub-model is chosen ------------
class Recorder(paddle.nn.Layer):
    def forward(self, predicts, batch, **kwargs):
        self.seen = predicts
        return {"loss": paddle.to_tensor(1.0, dtype="float32")}


def centers_pkl(tmp_path, classes=6, width=8):
    path = tmp_path / "c.pkl"
    with open(path, "wb") as f:
        pickle.dump({i: np.full(width, i, np.float32) for i in range(classes)}, f)
    return str(path)


def head_out(rng, with_feats=True):
    out = {"ctc": paddle.to_tensor(rng.standard_normal((2, 5, 6)).astype(np.float32)),
           "ctc_neck": paddle.zeros([2, 5, 4]), "gtc": paddle.zeros([2, 3])}
    if with_feats:
        out["ctc_feats"] = paddle.to_tensor(rng.standard_normal((2, 5, 8)).astype(np.float32))
    return out


def test_distillation_multihead_student_only(tmp_path):
    rng = np.random.default_rng(1)
    student, teacher = head_out(rng), head_out(rng, with_feats=False)
    predicts = {"Student": {"head_out": student, "neck_out": student["ctc_neck"]},
                "Teacher": {"head_out": teacher, "neck_out": teacher["ctc_neck"]}}
    base = Recorder()
    loss = kcl.wrap(base, dict(center_file_path=centers_pkl(tmp_path), weight=0.5, num_classes=6, feat_dim=8,
                               model_name_list=["Student"]))
    out = loss(predicts, None)
    assert sorted(out) == ["loss", "loss_center_Student"]
    seen = base.seen
    assert set(seen) == {"Student", "Teacher"} and seen["Teacher"] is predicts["Teacher"]
    assert list(seen["Student"]["head_out"]) == ["ctc", "ctc_neck", "gtc"]  # upstream's keys, in order
    assert all(seen["Student"]["head_out"][k] is student[k] for k in ("ctc", "ctc_neck", "gtc"))
    assert "ctc_feats" in predicts["Student"]["head_out"]  # the model's output is not changed
    center = float(out["loss_center_Student"])
    assert np.isfinite(center) and float(out["loss"]) == pytest.approx(1.0 + 0.5 * center, rel=1e-6)


def test_single_multihead_and_plain_ctc(tmp_path):
    rng = np.random.default_rng(2)
    base = Recorder()
    loss = kcl.wrap(base, dict(center_file_path=centers_pkl(tmp_path), num_classes=6, feat_dim=8))
    out = loss(head_out(rng), None)
    assert list(base.seen) == ["ctc", "ctc_neck", "gtc"] and "loss_center" in out
    plain = (paddle.zeros([2, 5, 8]), paddle.zeros([2, 5, 6]))  # CTCHead(return_feats=True)
    out = loss(plain, None)
    assert base.seen is plain and np.isfinite(float(out["loss_center"]))


@pytest.mark.parametrize("centers,kwargs,message", [
    ({0: np.zeros(8, np.float32), 9: np.zeros(8, np.float32)}, {}, "class 9 outside this config's dictionary [0, 6)"),
    ({0: np.zeros(4, np.float32)}, {}, "width 4, but the chosen CTC head's features are 8 wide"),
    ({"a": np.zeros(8, np.float32)}, {}, "not an int class index"),
    ([1, 2], {}, "holds a list, not a dict {class index: center}"),
    ({0: np.zeros((2, 4), np.float32)}, {}, "center of class 0 is a float32 (2, 4) array, not a float32 1-D array"),
    ({0: np.zeros(8)}, {}, "center of class 0 is a float64 (8,) array, not a float32 1-D array"),  # the pkl's format, as make inspect reads it
])
def test_bad_centers_are_one_line(tmp_path, centers, kwargs, message):
    path = tmp_path / "c.pkl"
    with open(path, "wb") as f:
        pickle.dump(centers, f)
    with pytest.raises(kcl.CenterFileError) as e:
        kcl.wrap(Recorder(), dict(center_file_path=str(path), num_classes=6, feat_dim=8, **kwargs))
    text = str(e.value)
    assert message in text and "\n" not in text and text.startswith("ppocr-center-kit: ")


def test_not_a_pickle_and_missing(tmp_path):
    (tmp_path / "c.pkl").write_bytes(b"not a pickle")
    for path, message in ((tmp_path / "c.pkl", "is not a readable pickle"), (tmp_path / "none.pkl", "does not exist")):
        with pytest.raises(kcl.CenterFileError, match=message):
            kcl.read_centers(str(path), 6, 8)


def test_width_checked_at_the_first_step(tmp_path):
    loss = kcl.wrap(Recorder(), dict(center_file_path=centers_pkl(tmp_path, width=8), num_classes=6))
    with pytest.raises(kcl.CenterFileError, match="the centers are 8 wide but the CTC features 5"):
        loss((paddle.zeros([2, 5, 5]), paddle.zeros([2, 5, 6])), None)
