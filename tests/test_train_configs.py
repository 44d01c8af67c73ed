"""Clone tier: `make train` with the kit's own centers on the real upstream configs people
train (issue #10), two steps each on four tiny images, stand-in checkpoints
(centerkit.standin: fresh weights, CTC heads reading "1" everywhere; `make export` of them
gives a one-class pkl at the chosen model's width).

- a finite center loss on the chosen sub-model only (Student of a Distillation config);
- the tree is byte-identical after make train (git status clean), also when interrupted;
- a patched tree (make apply) trains a config without the kit's loss to the same logged
  losses as the unpatched tree, step for step;
- every bad CENTERS / MODEL case is one line and exit code 2, before any training.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time

import numpy as np
import pytest

import tiny_data
from conftest import NEWEST, YAML_BROKEN, YAML_FIXED
from kit_run import KIT, error_lines, git_status, helper_env, make, make_command, recipe_exit
from centerkit.make_commands import opts_text

TRAIN_RELEASES = [YAML_BROKEN, YAML_FIXED, NEWEST]
FAMILIES = {  # newest name first (renamed in v3.0)
    "svtrv2-distillation": ["configs/rec/SVTRv2/ch_SVTRv2_rec_distillation.yml",
                            "configs/rec/SVTRv2/rec_svtrv2_ch_distillation.yml"],
    "ppocrv4-distillation": ["configs/rec/PP-OCRv4/PP-OCRv4_mobile_rec_distillation.yml",
                             "configs/rec/PP-OCRv4/ch_PP-OCRv4_rec_distillation.yml"],
    "ppocrv5-multihead": ["configs/rec/PP-OCRv5/PP-OCRv5_mobile_rec.yml"],
    "ppocrv2-enhanced-ctc": ["configs/rec/ch_PP-OCRv2/ch_PP-OCRv2_rec_enhanced_ctc_loss.yml"],
}
# Upstream's PP-OCRv4 distillation Train pipeline has no resize and no valid_ratio
# (KeyError: 'valid_ratio', retried forever by SimpleDataSet): its own train.py cannot run
# it either (PaddleOCR issues 10700, 11149). Read it as PP-OCRv4_mobile_rec.yml does, through
# the multi-scale set: then its SVTR Teacher fails upstream, and the test skips saying so.
MULTI_SCALE = ["Train.dataset.name=MultiScaleDataSet", "Train.dataset.ds_width=false",
               "Train.sampler={name: MultiScaleSampler, scales: [[320, 48]], first_bs: 2, fix_bs: false, "
               "divided_factor: [8, 16], is_training: true}"]
EXTRA_OPTS = {"ppocrv4-distillation": MULTI_SCALE}


def shares(family):
    """The mark that runs the tests of the newest release's `family` on one xdist worker
    (make test: --dist loadgroup), so they share what Setup made."""
    return pytest.mark.xdist_group("train-" + family)


@pytest.fixture
def setup(tree_of, tmp_path):
    """setup(release, family, export=True) -> Setup for this test."""
    return lambda release, family, export=True: Setup(tree_of, release, family, tmp_path, export)


class Setup:
    """A release tree, its Python, a config of the family, tiny data, a stand-in
    checkpoint and the kit's centers exported from it. The data and stand-in, and the
    centers, are made once per worker, tree and family (tiny_data.made_once: each is ~10-20 s
    of Paddle) and only read by the tests; each test gets its own copy of the centers and
    report (one renames the report) and writes its training output under its own tmp_path."""

    def __init__(self, tree_of, release, family, tmp_path, export=True):
        self.tree = tree_of(release)
        found = [c for c in FAMILIES[family] if os.path.isfile(os.path.join(self.tree, c))]
        if not found:
            pytest.skip("%s has no %s config" % (release, family))
        self.config, self.release, self.tmp = found[0], release, tmp_path
        import yaml

        try:  # as upstream's own tools/program.py reads it
            with open(os.path.join(self.tree, self.config), encoding="utf-8") as f:
                yaml.load(f, Loader=yaml.Loader)
        except yaml.YAMLError as e:
            pytest.skip("%s %s is not valid YAML upstream (%s): its own train.py cannot read it either"
                        % (release, self.config, str(e).splitlines()[0]))
        self.python = tiny_data.release_python(self.tree, release)
        folder, (self.data_opts, self.widths) = tiny_data.made_once(("train", self.tree, family),
                                                                    lambda f: self._standin(f, family))
        self.ckpt = str(folder / "ckpt")
        self.train_opts = self.data_opts + ["Global.epoch_num=1", "Global.print_batch_step=1",
                                            "Global.eval_batch_step=[1000,1000]", "Global.save_epoch_step=100",
                                            "Global.save_model_dir=%s" % (tmp_path / "out"),
                                            "Global.cal_metric_during_train=false"]
        self.centers = str(tmp_path / "train_center.pkl")
        if export:
            exported, _ = tiny_data.made_once(("train-centers", self.tree, family), self._export)
            for name in ("train_center.pkl", "train_center.report.json"):
                shutil.copy(exported / name, tmp_path / name)

    def _standin(self, folder, family):
        """(data opts, widths) of the tiny data and stand-in checkpoint made in folder."""
        data = folder / "data"
        opts = tiny_data.dataset(data, images=4, labels="1111", shape=(48, 160))[1:]  # the config's own dict
        opts += ["Eval.dataset.data_dir=%s" % data, "Eval.dataset.label_file_list=[%s]" % (data / "train.txt"),
                 "Train.loader.num_workers=0", "Eval.loader.num_workers=0", "Train.loader.batch_size_per_card=2",
                 "Train.loader.shuffle=false"]
        with open(os.path.join(self.tree, self.config), encoding="utf-8") as f:
            if "\n  sampler:" in f.read():  # MultiScaleSampler: its own batch size
                opts.append("Train.sampler.first_bs=2")
        opts += EXTRA_OPTS.get(family, [])
        made = subprocess.run([self.python, "-m", "centerkit.standin", self.config, str(folder / "ckpt"), "1"] + opts,
                              cwd=self.tree, env=helper_env(), capture_output=True, text=True)
        assert made.returncode == 0, made.stderr[-3000:]
        return opts, json.loads(made.stdout.splitlines()[-1])["widths"]

    def _export(self, folder):
        r = make("export", cwd=self.tree, env=self.env, PYTHON=self.python, CONFIG=self.config, CHECKPOINT=self.ckpt,
                 OUTPUT=str(folder / "train_center.pkl"), OPTS=opts_text(self.data_opts))
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]

    env = property(lambda self: {"PADDLEOCR_VERSION": self.release})

    def train(self, **variables):
        variables = dict(dict(PYTHON=self.python, CONFIG=self.config, CHECKPOINT=self.ckpt, CENTERS=self.centers,
                              OPTS=opts_text(self.train_opts)), **variables)
        return make("train", cwd=self.tree, env=self.env, **variables)


def logged_steps(text):
    """[{loss name: value}] of each `global_step:` line of a ppocr training log."""
    steps = []
    for line in text.splitlines():
        if "global_step:" not in line:
            continue
        fields = dict(re.findall(r"(\w+): ([-+\w.]+)", line.split("global_step:", 1)[1]))
        steps.append({k: v for k, v in fields.items() if "loss" in k or k in ("dkd_0", "ctc_logits_0")})
    return steps


def upstream_fails(s):
    """Skip when upstream's own tools/train.py, unpatched, cannot train the config on the
    same data either (PP-OCRv4 distillation's Teacher, see README): not the kit's doing."""
    import yaml

    with open(os.path.join(s.tree, s.config), encoding="utf-8") as f:
        models = yaml.safe_load(f)["Architecture"].get("Models") or {}
    o = [x + "-upstream" if x.startswith("Global.save_model_dir=") else x for x in s.train_opts]
    o += ["Global.pretrained_model=%s" % s.ckpt, "Global.checkpoints=null", "Global.use_gpu=false"]
    o += ["Architecture.Models.%s.pretrained=null" % m for m in models]  # as make train drops them
    r = subprocess.run([s.python, "tools/train.py", "-c", s.config, "-o", *o], cwd=s.tree, env=helper_env(),
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        pytest.skip("upstream's own tools/train.py fails on %s %s too: %s" % (s.release, s.config, last[:300]))


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("release", TRAIN_RELEASES)
def test_make_train_two_steps(setup, release, family, tmp_path):
    s = setup(release, family)
    r = s.train()
    if r.returncode != 0:
        upstream_fails(s)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-3000:]
    steps = logged_steps(r.stdout)
    assert len(steps) >= 2, r.stdout[-3000:]
    distillation = "distillation" in family
    want = "loss_center_Student" if distillation else "loss_center"
    for step in steps:
        centers = {k: v for k, v in step.items() if k.startswith("loss_center")}
        assert list(centers) == [want], step  # the chosen sub-model only
        value = float(centers[want])
        assert value == value and 0 < value < float("inf"), step
    assert git_status(s.tree) == ""
    derived = tmp_path / "out" / "centerkit_train.yml"
    import yaml
    with open(derived, encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    assert cfg["Loss"]["kit_center"]["center_file_path"] == s.centers
    assert cfg["Loss"]["kit_center"]["feat_dim"] == s.widths.get("Student", s.widths.get(""))
    assert cfg["Loss"]["kit_center"]["model_name_list"] == (["Student"] if distillation else [])
    assert cfg["Global"]["pretrained_model"] == s.ckpt
    assert "CenterLoss" not in json.dumps(cfg["Loss"].get("loss_config_list"))


@pytest.mark.parametrize("family", [pytest.param(f, marks=shares(f)) for f in
                                    ("svtrv2-distillation", "ppocrv5-multihead", "ppocrv2-enhanced-ctc")])
def test_patched_tree_trains_like_upstream_without_the_loss(setup, family, tmp_path):
    """The config's own losses on the same first Train batch (same seeds, same weights),
    unpatched and after make apply: identical values. (Whole training runs are not
    reproducible upstream, augmentations vary, so one saved batch's forward and loss.)"""
    s = setup(NEWEST, family, export=False)
    script = os.path.join(KIT, "tests", "train_step_losses.py")

    def losses():
        r = subprocess.run([s.python, script, s.config, s.ckpt, str(tmp_path / "batch.npz"), *s.data_opts], cwd=s.tree,
                           env=helper_env(), capture_output=True, text=True)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        return json.loads(r.stdout.splitlines()[-1])

    before = losses()
    assert losses() == before  # reproducible in itself
    assert make("apply", cwd=s.tree, env=s.env).returncode == 0
    try:
        after = losses()
    finally:
        assert make("revert", cwd=s.tree, env=s.env).returncode == 0
    assert after == before and "loss" in before and all(v == v for v in before.values())
    assert git_status(s.tree) == ""


@shares("ppocrv2-enhanced-ctc")
def test_interrupted_make_train_leaves_the_tree_as_it_was(setup, tmp_path):
    s = setup(NEWEST, "ppocrv2-enhanced-ctc")
    s.train_opts = s.train_opts + ["Global.epoch_num=1000"]  # long enough to be interrupted
    cmd, env = make_command("train", env=s.env, PYTHON=s.python, CONFIG=s.config, CHECKPOINT=s.ckpt,
                            CENTERS=s.centers, OPTS=opts_text(s.train_opts))
    p = subprocess.Popen(cmd, cwd=s.tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    out = []
    deadline = time.time() + 240
    for line in p.stdout:
        out.append(line)
        if "global_step: 1," in line or time.time() > deadline:
            break
    assert any("global_step" in l for l in out), "".join(out)[-3000:]
    assert git_status(s.tree) != ""  # patched while it trains
    os.killpg(p.pid, signal.SIGINT)  # Ctrl-C in the terminal
    rest, err = p.communicate(timeout=120)
    assert p.returncode != 0
    assert "byte-identical to before" in rest, rest[-2000:] + err[-2000:]
    # the kit's lines, not tools/train.py's (and its DataLoader's) KeyboardInterrupt traceback
    assert "ppocr-center-kit: interrupted" in err and "Traceback" not in err + rest, err[-3000:]
    assert git_status(s.tree) == ""


BAD = {
    "missing": (None, "does not exist; pass CENTERS="),
    "not-a-pickle": (b"not a pickle", "is not a readable pickle"),
    "list": ([1, 2], "holds a list, not a dict"),
    "string-key": ({"a": [0.0] * 96}, "not an int class index"),
    "outside-dictionary": ({7000: np.zeros(96, np.float32)}, "class 7000 outside this config's dictionary [0, 6625)"),
    "width": ({3: np.zeros(64, np.float32)}, "width 64, but the chosen CTC head's features are 96 wide"),
}


@shares("ppocrv2-enhanced-ctc")
def test_bad_centers_are_one_line_exit_2(setup, tmp_path):
    import pickle

    s = setup(NEWEST, "ppocrv2-enhanced-ctc", export=False)
    for name, (content, message) in BAD.items():
        path = tmp_path / ("%s.pkl" % name)
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif content is not None:
            with open(path, "wb") as f:
                pickle.dump({k: __import__("numpy").asarray(v, "float32") for k, v in content.items()}
                            if isinstance(content, dict) else content, f)
        s.centers = str(path)
        r = s.train()
        lines = error_lines(r)
        assert recipe_exit(r) == 2 and len(lines) == 1 and message in lines[0], (name, r.stdout[-1500:], r.stderr[-1500:])
        assert "global_step" not in r.stdout and git_status(s.tree) == ""
    r = s.train(MODEL="Student", CENTERS=str(tmp_path / "width.pkl"))
    assert recipe_exit(r) == 2 and "not a Distillation model; drop MODEL=" in error_lines(r)[0]
    r = s.train(CENTER_WEIGHT="-1")
    assert recipe_exit(r) == 2 and "CENTER_WEIGHT=-1 is not a number >= 0" in error_lines(r)[0]


@shares("svtrv2-distillation")
def test_wrong_sub_model_is_one_line(setup, tmp_path):
    s = setup(NEWEST, "svtrv2-distillation")
    r = s.train(MODEL="Pupil")
    assert recipe_exit(r) == 2 and "MODEL=Pupil is not a sub-model" in error_lines(r)[0]
    r = s.train(MODEL="Teacher")  # the Student's centers on the Teacher: its report says whose they are
    assert recipe_exit(r) == 2 and "exported from sub-model Student" in error_lines(r)[0], r.stderr[-2000:]
    report = tmp_path / "train_center.report.json"
    aside = tmp_path / "aside.json"
    report.rename(aside)  # without the report, the centers alone: widths differ? then one line
    r = s.train(MODEL="Teacher")
    if s.widths["Teacher"] != s.widths["Student"]:
        assert recipe_exit(r) == 2 and "features are %d wide" % s.widths["Teacher"] in error_lines(r)[0]
    aside.rename(report)
    # the same number of classes, another dictionary: refused by the report's digest of it
    with open(os.path.join(s.tree, "ppocr/utils/ppocr_keys_v1.txt"), encoding="utf-8") as f:
        chars = f.read().splitlines()
    (tmp_path / "other_dict.txt").write_text("\n".join(chars[1:] + chars[:1]) + "\n", encoding="utf-8")
    s.train_opts = s.train_opts + ["Global.character_dict_path=%s" % (tmp_path / "other_dict.txt")]
    r = s.train()
    lines = error_lines(r)
    assert recipe_exit(r) == 2 and len(lines) == 1 and "exported with another dictionary" in lines[0], r.stderr[-2000:]
    assert "global_step" not in r.stdout and git_status(s.tree) == ""


@shares("ppocrv2-enhanced-ctc")
def test_make_train_nproc_2(setup, tmp_path):
    """NPROC=2: the clone's tools/train.py under paddle.distributed.launch (CPU, gloo)."""
    s = setup(NEWEST, "ppocrv2-enhanced-ctc")
    s.train_opts = s.train_opts + ["Train.loader.batch_size_per_card=1"]  # 4 images, 2 ranks: 2 steps each
    r = s.train(NPROC="2")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-3000:]
    assert "running 2 CPU processes (gloo)" in r.stdout and "+ PADDLE_DISTRI_BACKEND=gloo " in r.stdout
    steps = logged_steps(r.stdout)
    assert len(steps) >= 2 and all(0 < float(st["loss_center"]) < float("inf") for st in steps)
    assert git_status(s.tree) == ""


@shares("svtrv2-distillation")
def test_make_train_config_writes_the_yaml_only(setup, tmp_path):
    import yaml

    s = setup(NEWEST, "svtrv2-distillation")
    user_config = os.path.join(s.tree, s.config)
    with open(user_config, "rb") as f:
        before = f.read()
    r = make("train-config", cwd=s.tree, env=s.env, PYTHON=s.python, CONFIG=s.config, CENTERS=s.centers,
             CHECKPOINT=s.ckpt, CENTER_WEIGHT="0.1", OPTS=opts_text(s.train_opts))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    derived = tmp_path / "out" / "centerkit_train.yml"
    assert "tools/train.py -c %s" % derived in r.stdout and "global_step" not in r.stdout
    assert git_status(s.tree) == ""
    with open(user_config, "rb") as f:
        assert f.read() == before
    with open(derived, encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    assert cfg["Loss"]["kit_center"]["weight"] == 0.1 and cfg["Loss"]["name"] == "CombinedLoss"
    models = cfg["Architecture"]["Models"]
    student_ctc = next(h["CTCHead"] for h in models["Student"]["Head"]["head_list"] if "CTCHead" in h)
    teacher_ctc = next(h["CTCHead"] for h in models["Teacher"]["Head"]["head_list"] if "CTCHead" in h)
    assert student_ctc["Head"]["kit_center_feats"] is True and "kit_center_feats" not in (teacher_ctc.get("Head") or {})
    assert cfg["Global"]["use_gpu"] is False and "pretrained" not in models["Teacher"]
