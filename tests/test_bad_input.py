"""Bad input: one line naming the fix, exit code 2, and the tree and user files unchanged.
The tree is the real v3.7.0 sdist (tools/, ppocr/), the user's files are made here."""

import os

import pytest
import yaml

import upstream
from conftest import SDIST_RELEASES
from kit_run import error_lines, make, snapshot
from centerkit import KitError, patchfile
from centerkit.patch_queue import PatchQueue, read_manifest


def base_config(data):
    return {
        "Global": {"use_gpu": False, "character_dict_path": str(data / "dict.txt"),
                   "checkpoints": str(data / "ckpt" / "best_accuracy"), "use_space_char": False},
        "Architecture": {"model_type": "rec", "algorithm": "CRNN",
                         "Backbone": {"name": "MobileNetV3"}, "Neck": {"name": "SequenceEncoder"},
                         "Head": {"name": "CTCHead"}},
        "Loss": {"name": "CTCLoss"},
        "PostProcess": {"name": "CTCLabelDecode"},
        "Train": {"dataset": {"name": "SimpleDataSet", "data_dir": str(data),
                              "label_file_list": [str(data / "train.txt")]}},
        "Eval": {"dataset": {"name": "SimpleDataSet", "data_dir": str(data),
                             "label_file_list": [str(data / "train.txt")]}, "loader": {}},
    }


def distill_config(data):
    cfg = base_config(data)
    single = cfg["Architecture"]
    cfg["Architecture"] = {"model_type": "rec", "name": "DistillationModel", "algorithm": "Distillation",
                           "Models": {"Teacher": dict(single), "Student": dict(single)}}
    return cfg


@pytest.fixture
def env(tmp_path):
    tree = upstream.sdist_tree(SDIST_RELEASES[-1], str(tmp_path / "src"))
    data = tmp_path / "user"
    (data / "img").mkdir(parents=True)
    (data / "ckpt").mkdir()
    (data / "ckpt" / "best_accuracy.pdparams").write_bytes(b"weights")
    (data / "img" / "0.png").write_bytes(b"png")
    (data / "train.txt").write_text("img/0.png\t1\n")
    (data / "dict.txt").write_text("1\n2\n")
    return tree, data


def write(data, cfg, name="cfg.yml"):
    path = data / name
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def assert_refused(result, *needles, before=None, roots=()):
    lines = error_lines(result)
    assert result.returncode != 0
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    if before is not None:
        assert [snapshot(r) for r in roots] == before
    return lines[0]


def run_export(tree, data, cfg_path, **extra):
    roots = (tree, str(data))
    before = [snapshot(r) for r in roots]
    result = make("export", cwd=tree, CONFIG=cfg_path, OUTPUT=str(data / "out.pkl"), **extra)
    assert "exit code 2" in result.stderr or result.returncode == 2 or "Error 2" in result.stderr
    return result, before, roots


CASES = {
    "missing config": (lambda d: str(d / "nope.yml"), {}, ["does not exist", "CONFIG="]),
    "not yaml": (lambda d: (d / "bad.yml").write_text("a: [b\n") and str(d / "bad.yml"), {}, ["YAML"]),
    "not a rec model": (lambda d: write(d, dict(base_config(d), Architecture=dict(base_config(d)["Architecture"], model_type="det"))), {}, ["model_type", "'rec'"]),
    "no CTC head": (lambda d: write(d, dict(base_config(d), Architecture=dict(base_config(d)["Architecture"], Head={"name": "AttentionHead"}))), {}, ["AttentionHead", "CTC"]),
    "unknown MODEL": (lambda d: write(d, distill_config(d)), {"MODEL": "Pupil"}, ["Pupil", "choose one of", "Teacher", "Student"]),
    "missing checkpoint": (lambda d: write(d, base_config(d)), {"CHECKPOINT": "/nonexistent/best"}, ["/nonexistent/best.pdparams", "CHECKPOINT="]),
    "missing dictionary": (lambda d: (d / "dict.txt").unlink() or write(d, base_config(d)), {}, ["dict.txt", "character_dict_path"]),
    "empty label file": (lambda d: (d / "train.txt").write_text("\n") and write(d, base_config(d)), {}, ["empty"]),
    "malformed label file": (lambda d: (d / "train.txt").write_text("img/0.png 1\n") and write(d, base_config(d)), {}, ["train.txt:1", "'\\t'"]),
    "missing image": (lambda d: (d / "train.txt").write_text("img/9.png\t1\n") and write(d, base_config(d)), {}, ["img/9.png"]),
    "output exists": (lambda d: (d / "out.pkl").write_bytes(b"mine") and write(d, base_config(d)), {}, ["out.pkl exists", "FORCE=1"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_and_changes_nothing(env, case):
    tree, data = env
    make_cfg, variables, needles = CASES[case]
    cfg_path = make_cfg(data)
    result, before, roots = run_export(tree, data, cfg_path, **variables)
    assert_refused(result, *needles, before=before, roots=roots)


def test_not_a_paddleocr_clone(env, tmp_path):
    tree, data = env
    result = make("export", cwd=str(data), CONFIG=write(data, base_config(data)))
    assert_refused(result, "not inside a PaddleOCR clone", "PADDLEOCR=")


def test_unknown_release_check_fails(env):
    tree, data = env
    before = snapshot(tree)
    result = make("check", cwd=tree, env={"PADDLEOCR_VERSION": "v9.1.0"})
    assert_refused(result, "9.1.0 is not supported", "PADDLEOCR_VERSION")
    assert snapshot(tree) == before


def test_local_edits_that_conflict_are_refused_and_kept(env):
    """The export patch on the real v3.7.0 file with a user's edit in it: refused, kept."""
    tree, _ = env
    target = os.path.join(tree, "tools", "export_center.py")
    with open(target, "a") as f:
        f.write("# my local edit\n")
    before = snapshot(tree)
    q = PatchQueue(tree, SDIST_RELEASES[-1].series)
    q.patches = [patchfile.export_patch_of(q.series)]
    with pytest.raises(KitError) as e:
        q.apply("v3.7.0")
    assert "do not apply" in str(e.value) and "git stash" in str(e.value)
    assert snapshot(tree) == before
    assert read_manifest(tree) is None
