"""`make inspect`, `make validate` and the samples chart.

Without a PaddleOCR clone (CI): the strict pkl format check, inspect from a report and
from the pkl alone, the chart's data, the export refusing an existing chart, and the
validate checks made before Paddle is imported. Clone tier (PADDLEOCR_REPO, the newest release):
validate against upstream's own CenterLoss config, loading through the clone's
ppocr.losses.center_loss.CenterLoss, and a real `make export` writing the chart.
"""

import importlib.util
import json
import os
import pickle
import re
import sys

import cv2
import matplotlib.colors
import numpy as np
import pytest
import yaml

import tiny_data
import upstream
from conftest import NEWEST
from kit_run import error_lines, export, git_status, make, output_of, snapshot
from centerkit import KitError, chart, files, pkl_format
from centerkit.dropins import kit_export
from centerkit.standin import noise_images

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("validate_centers", os.path.join(os.path.dirname(HERE), "tools", "validate_centers.py"))
validate_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(validate_tool)
ENHANCED_CTC = "configs/rec/ch_PP-OCRv2/ch_PP-OCRv2_rec_enhanced_ctc_loss.yml"  # 6625 classes, width 96


def save(path, obj):
    with open(str(path), "wb") as f:
        pickle.dump(obj, f)
    return str(path)


def rand_centers(classes, width, seed=0):
    rng = np.random.default_rng(seed)
    return {int(c): rng.normal(size=width).astype(np.float32) for c in classes}


def exported(folder, classes=(0, 1, 2, 4), width=8):
    """A pkl and the report.json beside it, as the export script writes them."""
    acc = kit_export.center_math.CenterAccumulator(6, width)
    rng = np.random.default_rng(1)
    idx = np.array([list(classes) * 3])
    acc.update(rng.normal(size=idx.shape + (width,)), idx, [True])
    acc.update(rng.normal(size=(1, 2, width)), np.array([[0, 0]]), [True])
    cents = acc.centers()
    report = kit_export.report.summarize(cents, acc.counts, ["blank", "a", "b", "c", "d"],
                          dict(images_seen=7, images_used=2, model=None, checkpoint="ck", release=NEWEST))
    report["samples_per_class"] = {str(c): int(acc.counts[c]) for c in cents}
    pkl = save(folder / "c.pkl", cents)
    (folder / "c.report.json").write_text(json.dumps(report))
    return pkl, report


def bars(fig):
    """(heights, labels, y scale) of the chart's bars, left to right."""
    top = fig.axes[0]
    return [p.get_height() for p in top.patches], [t.get_text() for t in top.get_xticklabels()], top.get_yscale()


def rows(stdout):
    """{label: value} of the printed table (label, two or more spaces, value)."""
    return dict(m.groups() for m in (re.match(r"(\S.*?)\s{2,}(.*)$", l) for l in stdout.splitlines()) if m)


def inspect(cwd, pkl, **variables):
    return make("inspect", cwd=str(cwd), CENTERS=pkl, **variables)


# -- the pkl format ------------------------------------------------------------------------
BAD = {
    "not a dict": ([np.zeros(3, np.float32)], "holds a list, not a dict"),
    "empty": ({}, "holds no centers"),
    "str key": ({"1": np.zeros(3, np.float32)}, "key '1' is a str"),
    "negative key": ({-1: np.zeros(3, np.float32)}, "class index -1 is negative"),
    "negative numpy key": ({np.int64(-2): np.zeros(3, np.float32)}, "class index -2 is negative"),
    "numpy bool key": ({np.bool_(True): np.zeros(3, np.float32)}, "is a bool, not an int class index"),
    "numpy float key": ({np.float32(1): np.zeros(3, np.float32)}, "is a float32, not an int class index"),
    "float64": ({1: np.zeros(3)}, "class 1 is a float64 (3,) array"),
    "2-D": ({1: np.zeros((1, 3), np.float32)}, "not a float32 1-D array"),
    "list": ({1: [0.0, 1.0]}, "class 1 is a list"),
    "two widths": ({1: np.zeros(3, np.float32), 2: np.zeros(4, np.float32)}, "class 2 has width 4, others 3"),
    "nan": ({1: np.array([0, np.nan], np.float32)}, "class 1 holds NaN"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_format_is_named(tmp_path, case):
    obj, needle = BAD[case]
    with pytest.raises(KitError) as e:
        pkl_format.load(save(tmp_path / "x.pkl", obj))
    assert needle in str(e.value)


def test_good_format_in_every_pickle_protocol(tmp_path):
    want = rand_centers([0, 3, 7], 5)
    for proto in range(2, pickle.HIGHEST_PROTOCOL + 1):
        path = tmp_path / ("p%d.pkl" % proto)
        path.write_bytes(pickle.dumps(want, protocol=proto))
        got, width, stock = pkl_format.load(str(path))
        assert width == 5 and sorted(got) == [0, 3, 7] and stock == ""
        assert all(np.array_equal(got[k], want[k]) for k in want)


def stock_centers(classes, width):
    """What upstream's export_center.py pickles: numpy int64 keys (argmax indices)."""
    return {np.int64(c): v for c, v in rand_centers(classes, width).items()}


def test_a_stock_pkl_is_read_and_named(tmp_path):
    """upstream's own export writes numpy integer keys; CenterLoss loads them, so does the kit."""
    path = save(tmp_path / "stock.pkl", stock_centers([0, 3, 7], 5))
    got, width, stock = pkl_format.load(path)
    assert width == 5 and stock == pkl_format.STOCK_FORMAT and [type(k) for k in got] == [int] * 3
    r = inspect(tmp_path, "stock.pkl")
    assert r.returncode == 0, r.stderr
    assert "centers   stock.pkl: 3 classes, width 5, stock format (numpy integer keys" in r.stdout


class _Boom:
    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_reading_a_pkl_runs_no_code_from_it(tmp_path):
    bomb = _Boom()
    bomb.path = str(tmp_path / "ran")
    path = save(tmp_path / "evil.pkl", {1: bomb})
    with pytest.raises(KitError) as e:
        pkl_format.load(path)
    assert "posix.mkdir" in str(e.value) or "os.mkdir" in str(e.value)
    assert not os.path.exists(bomb.path)


def test_inspect_refuses_a_bad_pkl_in_one_line(tmp_path):
    pkl = save(tmp_path / "c.pkl", {0: np.zeros(4, np.float32), 1: np.zeros(5, np.float32)})
    r = inspect(tmp_path, pkl)
    assert r.returncode != 0 and "Error 2" in r.stderr
    assert error_lines(r) == ["ppocr-center-kit: error: %s: center of class 1 has width 5, others 4; "
                              "all centers need one width" % pkl]
    (tmp_path / "t.pkl").write_bytes(b"\x80\x04not a pickle")
    r = inspect(tmp_path, "t.pkl")
    assert len(error_lines(r)) == 1 and "is not a readable pickle" in r.stderr
    assert sorted(os.listdir(tmp_path)) == ["c.pkl", "t.pkl"]  # no chart, nothing else


# -- inspect -------------------------------------------------------------------------------
def test_inspect_prints_the_exports_report_and_writes_the_chart_once(tmp_path):
    pkl, report = exported(tmp_path)
    r = inspect(tmp_path, "c.pkl")  # relative to where make runs
    assert r.returncode == 0, r.stderr
    assert kit_export.report.format_report(report) in r.stdout  # the export script's own table, not a copy
    table = rows(r.stdout)
    assert table["report"] == "c.report.json" and table["characters without a center"] == "1 c"
    # class 0 is the CTC blank: named, its samples apart from the characters'
    assert table["classes with a center"] == "3 of 4 characters, and the CTC blank"
    assert table["CTC blank (class 0)"] == "%d samples" % report["samples_per_class"]["0"] == "5 samples"
    png = tmp_path / "c.samples.png"
    assert png.read_bytes() == chart.png(report["samples_per_class"])  # the chart of the report's counts

    before = png.read_bytes()
    png.write_bytes(b"mine")
    r = inspect(tmp_path, pkl)
    assert r.returncode == 0 and "exists, kept (FORCE=1" in r.stdout
    assert png.read_bytes() == b"mine"
    assert inspect(tmp_path, pkl, FORCE="1").returncode == 0
    assert png.read_bytes() == before
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # no temp file left


def test_inspect_refuses_a_report_of_another_pkl(tmp_path):
    exported(tmp_path)
    pkl = save(tmp_path / "c.pkl", rand_centers([0, 1, 2, 4, 5], 8))  # re-exported, report stale
    r = inspect(tmp_path, pkl)
    line = error_lines(r)
    assert len(line) == 1 and "does not describe this pkl" in line[0] and "class [5]" in line[0]
    save(tmp_path / "c.pkl", rand_centers([0, 1, 2, 4], 16))
    assert "of width 8, the pkl holds 4 of width 16" in error_lines(inspect(tmp_path, pkl))[0]


def test_inspect_from_the_pkl_alone(tmp_path):
    pkl = save(tmp_path / "c.pkl", rand_centers([0, 1, 3, 5], 6))  # 5 = space of a 4-char dict
    r = inspect(tmp_path, pkl)
    assert r.returncode == 0, r.stderr
    table = rows(r.stdout)
    assert table["samples per class min / median"].startswith("unknown")
    assert table["classes with a center"] == "3 besides the CTC blank (of a dictionary not given: DICT=)"
    assert table["CTC blank (class 0)"].startswith("a center, samples unknown")  # named, even without DICT=
    assert "DICT=" in table["characters without a center"]
    assert table["feature width"] == "6" and table["images seen"] == "unknown"
    assert "none: the report has no samples" in r.stdout
    assert not (tmp_path / "c.samples.png").exists()
    got, _, _ = pkl_format.load(pkl)
    closest = r.stdout.split("closest pairs of centers")[1].splitlines()[1:7]
    assert closest == kit_export.report.format_closest(kit_export.report.closest_pairs(got, None))[1:]  # all 4 x 3 / 2 = 6 pairs
    assert "CTC blank (class 0)" in r.stdout.split("closest pairs")[1] and '"' not in "".join(closest)  # no characters

    (tmp_path / "dict.txt").write_text("a\nb\nc\nd\n")
    r = inspect(tmp_path, pkl, DICT="dict.txt")
    assert r.returncode == 0, r.stderr
    table = rows(r.stdout)
    assert table["classes with a center"] == "3 of 5 characters, and the CTC blank"  # a, c, space of a-d + space
    assert table["characters without a center"] == "2 bd"
    assert table["classes out of the dictionary"] == "0"
    closest = r.stdout.split("closest pairs of centers")[1]
    assert all(name in closest for name in ('"a" (class 1)', '"c" (class 3)', '" " (class 5)'))  # named by DICT=


# -- the chart -----------------------------------------------------------------------------
def test_noise_images_round_trip(tmp_path):
    """The test images (and make smoke's) are PNGs that OpenCV, PaddleOCR's reader, reads
    back as written."""
    opts = noise_images(str(tmp_path), "ab", (7, 13), seed=3)
    rng = np.random.default_rng(3)
    for i in range(2):
        back = cv2.imread(str(tmp_path / "img" / ("%d.png" % i)), cv2.IMREAD_UNCHANGED)
        assert back.shape == (7, 13) and np.array_equal(back, rng.integers(0, 255, (7, 13), dtype=np.uint8))
    assert (tmp_path / "train.txt").read_text() == "img/0.png\ta\nimg/1.png\tb\n"
    assert opts == ["Train.dataset.data_dir=%s" % tmp_path, "Train.dataset.label_file_list=[%s]" % (tmp_path / "train.txt")]


def test_chart_sorts_classes_and_picks_the_axis():
    # class 0 is CTC's blank: named so, in its own colour
    assert bars(chart.figure({"0": 2, "1": 4, "2": 3})) == ([4, 3, 2], ["1", "2", chart.BLANK], "linear")
    assert bars(chart.figure({"0": 1, "1": 100, "2": 10})) == ([100, 10, 1], ["1", "2", chart.BLANK], "log")  # 100x range
    top = chart.figure({"0": 9, "1": 4}).axes[0]
    assert [matplotlib.colors.to_hex(p.get_facecolor()) for p in top.patches] == [chart.BLANK_BAR, chart.BAR]
    assert "CTC blank" in top.get_xlabel() and "blank" not in chart.figure({"1": 4}).axes[0].get_xlabel()
    assert bars(chart.figure({"0": 1, "1": 100, "2": 10}, "linear"))[2] == "linear"
    small = chart.figure({"0": 2, "1": 4})
    many = chart.figure({str(c): c for c in range(1, 5001)})  # more classes than bars: the top ones
    heights, labels, scale = bars(many)
    assert heights == list(range(5000, 5000 - chart.TOP_N, -1)) and labels == [str(h) for h in heights]
    assert scale == "log"  # 5000x range
    assert sum(p.get_height() for p in many.axes[1].patches) == 5000  # every class in the histogram
    assert (many.get_size_inches() == small.get_size_inches()).all()  # one size, whatever the classes


def test_export_writes_the_chart_of_the_childs_report_and_never_over_a_file(tmp_path):
    pkl, report = exported(tmp_path)
    png = files.chart_path(pkl)
    chart.write_of_report(str(tmp_path / "c.report.json"), png, force=False)
    with open(png, "rb") as f:
        assert f.read() == chart.png(report["samples_per_class"])
    with pytest.raises(KitError, match="exists"):
        chart.write_of_report(str(tmp_path / "c.report.json"), png, force=False)


def test_what_a_killed_write_leaves_is_what_the_kits_revert_removes(tmp_path):
    """The export writes each output through a temp file beside it (it may not import the
    kit); a kill before the rename leaves that file, and the kit's revert removes it by its
    name (files.remove_temps), and nothing else beside the output."""
    out = str(tmp_path / "c.pkl")
    assert files.report_path(out) == str(tmp_path / "c.report.json")
    left = kit_export.output_files.temp_copy(out, b"part of a pkl")  # a write_files killed before its rename
    assert os.path.dirname(left) == str(tmp_path) and open(left, "rb").read() == b"part of a pkl"
    keep = [tmp_path / ".c.pkl.other", tmp_path / "c.pkl.12345678", tmp_path / ".d.pkl.abcdefgh"]
    for path in keep:
        path.write_text("not a temp of c.pkl")
    files.remove_temps(out)
    assert not os.path.exists(left) and all(p.exists() for p in keep)


def fake_tree(tmp_path):
    """What find_tree takes for a PaddleOCR tree, with no ppocr package in it."""
    tree = tmp_path / "tree"
    (tree / "tools").mkdir(parents=True)
    (tree / "ppocr").mkdir()
    (tree / "tools" / "export_center.py").write_text("")
    return tree


def test_export_refuses_an_existing_chart_before_touching_anything(tmp_path):
    tree = fake_tree(tmp_path)
    (tmp_path / "c.samples.png").write_bytes(b"mine")
    (tmp_path / "cfg.yml").write_text("Architecture: {}\n")
    before = snapshot(str(tmp_path))
    r = make("export", cwd=str(tree), CONFIG=str(tmp_path / "cfg.yml"), OUTPUT=str(tmp_path / "c.pkl"))
    assert error_lines(r) == ["ppocr-center-kit: error: %s exists; remove it or pass FORCE=1" % (tmp_path / "c.samples.png")]
    assert snapshot(str(tmp_path)) == before


# -- validate, the checks made from the config alone -----------------------------------------
def center_config(tmp_path, loss, name="cfg.yml", space=False):
    (tmp_path / "dict.txt").write_text("".join(c + "\n" for c in "abcdefghij"))
    cfg = {"Global": {"character_dict_path": str(tmp_path / "dict.txt"), "use_space_char": space},
           "Architecture": {"model_type": "rec", "algorithm": "CRNN", "Head": {"name": "CTCHead"}},
           "Loss": loss}
    (tmp_path / name).write_text(yaml.safe_dump(cfg))
    return str(tmp_path / name)


def combined(**params):
    return {"name": "CombinedLoss", "loss_config_list": [{"CTCLoss": {"weight": 1.0}},
                                                          {"CenterLoss": dict(weight=0.05, **params)}]}


def validate(tmp_path, tree, pkl, cfg):
    return make("validate", cwd=str(tmp_path), CENTERS=pkl, CONFIG=cfg, PADDLEOCR=str(tree))


def test_center_losses_are_found_where_configs_put_them():
    center_losses = validate_tool.center_losses
    assert center_losses({"name": "CenterLoss", "num_classes": 5}) == [("Loss (name: CenterLoss)", {"name": "CenterLoss", "num_classes": 5})]
    found = center_losses(combined(num_classes=11, feat_dim=8))
    assert found == [("Loss.loss_config_list[1].CenterLoss", {"weight": 0.05, "num_classes": 11, "feat_dim": 8})]
    distill = {"name": "CombinedLoss", "loss_config_list": [
        {"DistillationCTCLoss": {"weight": 1.0, "model_name_list": ["Student"]}},
        {"DistillationCenterLoss": {"weight": 0.05, "model_name_list": ["Student"], "num_classes": 11}}]}
    assert [w for w, _ in center_losses(distill)] == ["Loss.loss_config_list[1].DistillationCenterLoss"]
    assert center_losses({"name": "CTCLoss"}) == [] and center_losses(None) == []


@pytest.mark.parametrize("case", ["width", "range", "no CenterLoss", "bad pkl", "not an int"])
def test_validate_refuses_before_loading(tmp_path, case):
    tree = fake_tree(tmp_path)
    pkl = save(tmp_path / "c.pkl", rand_centers([0, 3, 10] + ([11] if case == "range" else []), 8))
    loss = {"width": combined(num_classes=11, feat_dim=16), "range": combined(num_classes=11, feat_dim=8),
            "no CenterLoss": {"name": "CTCLoss"}, "bad pkl": combined(num_classes=11, feat_dim=8),
            "not an int": combined(num_classes="11", feat_dim=8)}[case]
    if case == "bad pkl":
        save(pkl, {3: np.zeros(8)})
    r = validate(tmp_path, tree, pkl, center_config(tmp_path, loss))
    needle = {"width": "the centers are 8 wide but Loss.loss_config_list[1].CenterLoss has feat_dim 16",
              "range": "classes past num_classes 11 of Loss.loss_config_list[1].CenterLoss (1, largest 11)",
              "no CenterLoss": "has no CenterLoss in its Loss section (Loss.name: CTCLoss)",
              "bad pkl": "center of class 3 is a float64",
              "not an int": "num_classes of Loss.loss_config_list[1].CenterLoss is '11', not a positive integer"}[case]
    lines = error_lines(r)
    assert r.returncode != 0 and len(lines) == 1 and needle in lines[0], r.stderr
    assert "ok:" not in r.stdout


# -- clone tier: the clone's own CenterLoss ------------------------------------------------
@pytest.fixture
def newest_tree(clone_source):
    if importlib.util.find_spec("paddle") is None:
        pytest.skip("this Python has no paddle to import ppocr.losses with")
    tree = upstream.release_tree(clone_source, NEWEST)
    if tree is None:
        pytest.skip("%s has neither tag %s nor its commit" % (clone_source, NEWEST))
    return tree


def test_validate_loads_through_the_clones_center_loss(newest_tree, tmp_path):
    pkl = save(tmp_path / "c.pkl", rand_centers([0, 1, 17, 6624], 96))  # 6624: the space class
    r = make("validate", cwd=newest_tree, CENTERS=pkl, CONFIG=ENHANCED_CTC)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok: %s fits Loss.loss_config_list[1].CenterLoss: 4 of 6625 classes have a "
                               "center, width 96; loaded by %s"
                               % (pkl, os.path.join(newest_tree, "ppocr", "losses", "center_loss.py")))
    assert "center_file_path is empty" in r.stdout and len(r.stdout.splitlines()) == 1
    assert git_status(newest_tree) == ""


def test_validate_takes_a_stock_pkl(newest_tree, tmp_path):
    pkl = save(tmp_path / "c.pkl", stock_centers([0, 1, 17, 6624], 96))
    r = make("validate", cwd=newest_tree, CENTERS=pkl, CONFIG=ENHANCED_CTC)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok: %s fits Loss.loss_config_list[1].CenterLoss: 4 of 6625 classes have a "
                               "center, width 96, stock format (numpy integer keys" % pkl)
    assert git_status(newest_tree) == ""


def test_validate_names_what_num_classes_must_be(newest_tree, tmp_path):
    with open(os.path.join(newest_tree, ENHANCED_CTC)) as f:
        cfg = yaml.safe_load(f)
    cfg["Global"]["use_space_char"] = False  # 6623 characters + blank: 6625 is one too many
    (tmp_path / "nospace.yml").write_text(yaml.safe_dump(cfg))
    pkl = save(tmp_path / "c.pkl", rand_centers([0, 1, 17], 96))
    r = make("validate", cwd=newest_tree, CENTERS=pkl, CONFIG=str(tmp_path / "nospace.yml"))
    assert error_lines(r) == ["ppocr-center-kit: error: num_classes is 6625 in Loss.loss_config_list[1].CenterLoss, "
                              "but the CTC head has 6624 classes: 6623 characters of ppocr/utils/ppocr_keys_v1.txt "
                              "+ 1 blank (use_space_char: false); set num_classes: 6624"]


@pytest.mark.parametrize("case", ["width", "range", "bad pkl"])
def test_validate_against_upstream_config_refuses(newest_tree, tmp_path, case):
    pkl = save(tmp_path / "c.pkl", {"width": rand_centers([0, 5], 64), "range": rand_centers([0, 6625], 96),
                                    "bad pkl": {5: np.zeros(96, np.float16)}}[case])
    r = make("validate", cwd=newest_tree, CENTERS=pkl, CONFIG=ENHANCED_CTC)
    needle = {"width": "the centers are 64 wide but Loss.loss_config_list[1].CenterLoss has feat_dim 96",
              "range": "classes past num_classes 6625 of Loss.loss_config_list[1].CenterLoss (1, largest 6625)",
              "bad pkl": "center of class 5 is a float16"}[case]
    lines = error_lines(r)
    assert r.returncode != 0 and len(lines) == 1 and needle in lines[0], r.stderr


def test_export_writes_the_chart_then_inspect_and_validate_take_the_pkl(newest_tree, tmp_path):
    data = tmp_path / "data"
    opts = tiny_data.dataset(data, images=11)
    cfg = tiny_data.config_path("tiny_plain_ctc.yml")
    ckpt, out = str(tmp_path / "ckpt"), str(tmp_path / "centers.pkl")
    tiny_data.reference(sys.executable, newest_tree, "init", cfg, ckpt, str(data / "train.txt"), str(tmp_path / "ref.pkl"),
                        opts)
    r, _, report = export(newest_tree, NEWEST, out, opts, CONFIG=cfg, CHECKPOINT=ckpt)
    assert r.returncode == 0, output_of(r)
    png = files.chart_path(out)
    assert "wrote %s" % png in r.stdout
    with open(png, "rb") as f:
        assert f.read() == chart.png(report["samples_per_class"])

    r = inspect(tmp_path, out)
    assert r.returncode == 0 and kit_export.report.format_report(report) in r.stdout and "exists, kept" in r.stdout, r.stderr

    with open(cfg) as f:
        center_cfg = yaml.safe_load(f)
    center_cfg["Global"]["character_dict_path"] = str(data / "dict.txt")
    center_cfg["Loss"] = combined(num_classes=11, feat_dim=24, center_file_path=out)
    (tmp_path / "center.yml").write_text(yaml.safe_dump(center_cfg))
    r = make("validate", cwd=newest_tree, CENTERS=out, CONFIG=str(tmp_path / "center.yml"))
    assert r.returncode == 0 and r.stdout.startswith("ok: ") and "width 24" in r.stdout and "note" not in r.stdout, r.stderr
    assert git_status(newest_tree) == ""
