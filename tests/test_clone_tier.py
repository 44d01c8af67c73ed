"""The clone tier: real upstream trees from PADDLEOCR_REPO (or PADDLEOCR_GIT_URL), one per
release of the table, at its tag or the commit ../shared/upstream-releases.tsv gives.

- every release: `make check`, `make apply`, `make status`, `make revert`; the patched
  files compile and the tree is byte-identical and `git status`-clean afterwards;
- v2.8 and later, where the Python in PADDLEOCR_PYTHON (default: this one) can import the
  tree: `make export` on a tiny generated data set for a Teacher/Student MultiHead CTC+NRTR
  config, a MultiHead CTC+SAR config and a plain CTC config, checked against an independent
  computation (reference_centers.py) from the same model outputs.
"""

import os
import pickle
import shutil

import numpy as np
import pytest
import yaml

import tiny_data
import upstream
from conftest import NEWEST, TABLE
from kit_run import error_lines, export, git_status, make, output_of, recipe_exit, snapshot
from centerkit import patchfile, releases
from centerkit.dropins import kit_export
from centerkit.make_commands import opts_text

E2E_RELEASES = TABLE  # v2.6 and v2.7 with Paddle 2.6.2 (release_envs.py)
CONFIGS = {"tiny_distill_ctc_nrtr.yml": 32, "tiny_multihead_ctc_sar.yml": 32, "tiny_plain_ctc.yml": 24}
# MultiHead took NRTRHead in v2.7 (PP-OCRv3, in v2.6, pairs CTC with SAR)
FIRST_RELEASE = {"tiny_distill_ctc_nrtr.yml": (2, 7, 0)}


def test_table_covers_the_shared_release_list():
    listed = upstream.release_commits()
    if not listed:
        pytest.skip("no %s" % upstream.RELEASES_TSV)
    assert sorted(listed) == sorted(r.name for r in TABLE)


@pytest.mark.parametrize("gitignore", [True, False], ids=["gitignore", "no-gitignore"])
@pytest.mark.parametrize("release", [r.name for r in TABLE])
def test_series_applies_and_reverts(tree_of, release, gitignore):
    tree = tree_of(release, gitignore)
    env = {"PADDLEOCR_VERSION": release}
    series = releases.series_for(release)
    targets = [t for p in patchfile.series_patches(series) for t in patchfile.targets(p)]
    before = {t: snapshot(os.path.dirname(os.path.join(tree, t))).get(os.path.basename(t)) for t in targets}

    r = make("check", cwd=tree, env=env)
    assert r.returncode == 0 and "applies cleanly" in r.stdout, r.stderr
    r = make("apply", cwd=tree, env=env)
    assert r.returncode == 0, r.stderr
    for t in targets:  # compiles (in memory: a .pyc in the tree would be ours, not the kit's)
        with open(os.path.join(tree, t), "rb") as f:
            compile(f.read(), t, "exec")
    assert "OPEN RUN" in make("status", cwd=tree, env=env).stdout
    assert make("check", cwd=tree, env=env).returncode != 0  # refuses while a run is open
    r = make("revert", cwd=tree, env=env)
    assert r.returncode == 0 and "byte-for-byte" in r.stdout, r.stderr
    after = {t: snapshot(os.path.dirname(os.path.join(tree, t))).get(os.path.basename(t)) for t in targets}
    assert after == before
    assert git_status(tree) == ""  # not even bytecode, ignored or not


def e2e_configs(release):
    return [c for c in CONFIGS if releases.parse_version(release) >= FIRST_RELEASE.get(c, (0,))]


def e2e_opts(config, data):
    opts = tiny_data.dataset_opts(data)
    if "distill" in config:  # sub-model `pretrained` paths must be ignored with a checkpoint
        opts += ["Architecture.Models.Teacher.pretrained=./no/such/teacher",
                 "Architecture.Models.Student.pretrained=./no/such/student"]
    return opts


def e2e_references(python, tree, release, folder):
    """For each config of the release, under folder/<config>: data (11 images, not a multiple
    of the batch size), a fresh-weights checkpoint and the reference centers, all made by one
    reference process before any export (the checkpoint and labels are what both read)."""
    jobs = []
    for config in e2e_configs(release):
        made = folder / config
        tiny_data.dataset(made / "data", images=11)
        jobs.append(["init+centers", tiny_data.config_path(config), str(made / "ckpt"), str(made / "data" / "train.txt"),
                     str(made / "ref.pkl"), *e2e_opts(config, made / "data")])
    tiny_data.references(python, tree, jobs, folder)


# A release's tests share one reference process (xdist_group: on one worker, made once).
@pytest.mark.parametrize("config,width", list(CONFIGS.items()))
@pytest.mark.parametrize("release", [pytest.param(r.name, marks=pytest.mark.xdist_group("e2e-" + r.name))
                                     for r in E2E_RELEASES])
def test_make_export_end_to_end(tree_of, release, config, width, tmp_path):
    if config not in e2e_configs(release):
        pytest.skip("%s's MultiHead has no NRTRHead (%s needs v2.7+)" % (release, config))
    tree = tree_of(release)
    python = tiny_data.release_python(tree, release)
    made, _ = tiny_data.made_once(("e2e", tree), lambda f: e2e_references(python, tree, release, f))
    assert git_status(tree) == ""
    data, ckpt, ref = tmp_path / "data", str(tmp_path / "ckpt"), str(made / config / "ref.pkl")
    shutil.copytree(made / config / "data", data)
    shutil.copy2(made / config / "ckpt.pdparams", ckpt + ".pdparams")
    opts = e2e_opts(config, data)
    cfg = tiny_data.config_path(config)
    (tmp_path / "run #2: out").mkdir()  # YAML would cut a bare path at ' #' and split it at ': '
    out = str(tmp_path / "run #2: out" / "centers.pkl")

    r, ours, report = export(tree, release, out, opts, PYTHON=python, CONFIG=cfg, CHECKPOINT=ckpt)
    assert r.returncode == 0, output_of(r)
    assert git_status(tree) == ""

    with open(ref, "rb") as f:
        theirs = pickle.load(f)
    assert ours and all(type(k) is int for k in ours)
    assert all(v.dtype == np.float32 and v.shape == (width,) for v in ours.values())
    assert sorted(ours) == sorted(theirs)
    for k in ours:
        np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-5, atol=1e-5)
    assert report["images_seen"] == 11 and report["images_used"] == 6
    # ENGINE=auto's choice on every release: the model converts. Where Paddle 2.x meets a CPU
    # without AVX-512 (the SIGILL of issue 20) the predictor is built without the fusion pass;
    # should it still die there, the kit's rerun on dygraph is the right answer, and says so.
    fallback = report.get("engine_fallback")
    crash_cpu = kit_export.engines.passes_to_delete(report["paddle"], kit_export.engines.cpu_flags())[0]
    assert report["engine"] == "inference" or (crash_cpu and report["engine"] == "dygraph" and fallback), report
    if report["engine"] == "inference":  # checked on its first batch against dygraph, always
        assert report["engine_agreement"]["max_abs_diff_over_scale"] <= 1e-3, report["engine_agreement"]
    else:
        assert report["engine_agreement"] is None


@pytest.mark.parametrize("problem", ["checkpoint of another config", "no image recognised"])
def test_export_refuses_without_writing_a_pkl(tree_of, problem, tmp_path):
    """Upstream would load the wrong checkpoint with warnings, or average nothing, and write
    an empty pkl; the kit stops with one line, exit 2, and writes nothing."""
    tree = tree_of(NEWEST)
    python = tiny_data.release_python(tree, NEWEST)
    data = tmp_path / "data"
    opts = tiny_data.dataset(data, images=5)
    labels, ckpt, out = str(data / "train.txt"), str(tmp_path / "ckpt"), tmp_path / "centers.pkl"
    cfg = tiny_data.config_path("tiny_plain_ctc.yml")
    made_for = tiny_data.config_path("tiny_multihead_ctc_sar.yml" if problem.startswith("checkpoint") else "tiny_plain_ctc.yml")
    tiny_data.reference(python, tree, "init", made_for, ckpt, labels, "-", opts)
    if problem == "no image recognised":
        (data / "train.txt").write_text("".join("img/%d.png\tjjjjjjjjjjjjjjjjjjjj\n" % i for i in range(5)))
    r = make("export", cwd=tree, env={"PADDLEOCR_VERSION": NEWEST}, PYTHON=python, CONFIG=cfg,
             CHECKPOINT=ckpt, OUTPUT=str(out), OPTS=opts_text(opts))
    assert recipe_exit(r) == 2, r.stderr[-2000:]
    lines = error_lines(r)
    assert len(lines) == 1 and ("does not fit this config" if problem.startswith("checkpoint") else "no training image was recognised") in lines[0]
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pdparams", "data"]  # no pkl, report, chart or temp
    assert git_status(tree) == ""


def test_revert_keeps_edits_made_while_patched(tree_of):
    """`make apply`, experiment, `make revert`: the originals come back and the experiment
    is kept beside the file, not thrown away."""
    tree = tree_of(NEWEST)
    env = {"PADDLEOCR_VERSION": NEWEST}
    target = os.path.join(tree, "ppocr", "modeling", "heads", "rec_ctc_head.py")
    with open(target, "rb") as f:
        original = f.read()
    assert make("apply", cwd=tree, env=env).returncode == 0
    with open(target, "ab") as f:
        f.write(b"# my experiment\n")
    with open(target, "rb") as f:
        edited = f.read()
    r = make("revert", cwd=tree, env=env)
    kept = target + ".edited-while-patched"
    try:
        assert r.returncode == 0 and kept in r.stderr, r.stderr
        with open(target, "rb") as f:
            assert f.read() == original
        with open(kept, "rb") as f:
            assert f.read() == edited
    finally:
        if os.path.exists(kept):
            os.unlink(kept)
    assert git_status(tree) == ""


@pytest.mark.parametrize("config", ["tiny_distill_ctc_nrtr.yml", "tiny_multihead_ctc_sar.yml"])
def test_make_export_mode_train_equals_the_manual_recipe(tree_of, config, tmp_path):
    """MODE=train on MultiHead models (a Distillation one too): train-mode layers, and still
    only the CTC branch (the NRTR/SAR head would need labels), against the manual recipe in
    train mode (reference_centers.py --mode train). Train mode draws dropout masks from an
    unseeded RNG (the stock script seeds nothing either), so two train-mode runs of the
    tiny configs' SVTR necks (drop_rate and attn_drop_rate 0.1) differ by ~1%; the configs
    are copied with those rates at 0, which leaves BatchNorm's batch statistics, the part of
    train mode that is deterministic, to be compared."""
    release = NEWEST
    tree = tree_of(release)
    python = tiny_data.release_python(tree, release)
    data = tmp_path / "data"
    opts = tiny_data.dataset(data, images=11)
    with open(tiny_data.config_path(config)) as f:
        text = yaml.safe_load(f)
    arch = text["Architecture"]
    for model in (arch.get("Models") or {"": arch}).values():
        for entry in model["Head"]["head_list"]:
            if "CTCHead" in entry:
                entry["CTCHead"]["Neck"].update(drop_rate=0.0, attn_drop_rate=0.0)
    cfg = str(tmp_path / config)
    with open(cfg, "w") as f:
        yaml.safe_dump(text, f)
    ckpt, out, ref = str(tmp_path / "ckpt"), str(tmp_path / "centers.pkl"), str(tmp_path / "ref.pkl")
    tiny_data.reference(python, tree, "init+centers", cfg, ckpt, str(data / "train.txt"), ref, ["--mode", "train"] + opts)
    r, ours, report = export(tree, release, out, opts, PYTHON=python, CONFIG=cfg, MODE="train", CHECKPOINT=ckpt)
    assert r.returncode == 0, output_of(r)
    assert git_status(tree) == ""
    with open(ref, "rb") as f:
        theirs = pickle.load(f)
    assert ours and sorted(ours) == sorted(theirs)
    for k in ours:
        np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-5, atol=1e-5)
    assert report["mode"] == "train" and report["images_used"] == 6
