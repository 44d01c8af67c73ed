"""`make bench` itself, at tiny sizes: every part but the 10k-image memory one runs to its
machine-readable line with finite ratios, and the tree is left as it was. (Its figures are
measured, never asserted: README quotes a real run.)"""

import math
import re

import pytest
import yaml

import tiny_data
from centerkit import KitError, released_models
from conftest import NEWEST
from kit_run import git_status, make


def bench_line(result):
    line = [l for l in result.stdout.splitlines() if l.startswith("bench: ")]
    assert line, result.stdout[-3000:] + result.stderr[-3000:]
    return {k: float(v) for k, v in re.findall(r"(\w+)=(\S+)", line[-1])}


def test_make_bench_runs_every_part_at_tiny_sizes(tree_of, tmp_path):
    tree = tree_of(NEWEST)
    python = tiny_data.release_python(tree, NEWEST)
    with open(tiny_data.config_path("tiny_distill_ctc_nrtr.yml"), encoding="utf-8") as f:
        config = yaml.safe_load(f)
    (tmp_path / "digits.txt").write_text("".join("%d\n" % i for i in range(10)))  # the bench's images read "1"
    config["Global"]["character_dict_path"] = str(tmp_path / "digits.txt")
    (tmp_path / "tiny_distill.yml").write_text(yaml.safe_dump(config))
    r = make("bench", cwd=tree, env={"PADDLEOCR_VERSION": NEWEST}, PYTHON=python, BENCH_IMAGES=4,
             BENCH_CONFIG=str(tmp_path / "tiny_distill.yml"), BENCH_ONLY="accumulate,e2e,loss",
             BENCH_LOSS_CLASSES="37,53")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    got = bench_line(r)
    measured = ["accumulate_speedup", "e2e_vs_recipe", "e2e_vs_floor", "e2e_inference_vs_floor",
                "inference_convert_s", "confusions_vs_export", "loss_mem_ratio", "loss_speedup"]
    assert all(math.isfinite(got[k]) and got[k] > 0 for k in measured), got
    assert math.isnan(got["mem_10k_over_1k"]) and math.isnan(got["nproc2_speedup"])  # not asked for
    assert "inference  load" in r.stdout and "dygraph    load" in r.stdout  # both engines' breakdown
    assert "confusions  the same 4 images" in r.stdout
    assert git_status(tree) == ""


def test_make_bench_refuses_an_unknown_part(tree_of):
    tree = tree_of(NEWEST)
    r = make("bench", cwd=tree, env={"PADDLEOCR_VERSION": NEWEST}, BENCH_ONLY="e2e,speed")
    assert r.returncode != 0 and "unknown part speed" in r.stderr
    assert git_status(tree) == ""


@pytest.mark.xdist_group("released-" + NEWEST)
def test_make_bench_times_the_released_model_against_upstream_predict_rec(tree_of):
    tree = tree_of(NEWEST)
    python = tiny_data.release_python(tree, NEWEST)
    try:
        released_models.model_folder("pp-ocrv4-mobile", log=lambda line: None)
    except KitError as e:
        pytest.skip(str(e))
    r = make("bench", cwd=tree, env={"PADDLEOCR_VERSION": NEWEST}, PYTHON=python, BENCH_IMAGES=6, BENCH_ONLY="released")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    got = bench_line(r)
    assert math.isfinite(got["released_vs_predict_rec"]) and got["released_vs_predict_rec"] > 0, got
    assert math.isnan(got["e2e_vs_floor"])  # not asked for
    assert "released    6 rendered lines" in r.stdout
    assert git_status(tree) == ""


def test_a_failing_inner_export_is_named_by_its_own_error_line(tree_of, tmp_path, monkeypatch):
    """The bench's export runs in a probe that times it: the export's own one-line error
    reaches the bench's (not make's `Error 2`, not nothing)."""
    import importlib.util
    import os

    from kit_run import KIT, hermetic_env

    kept = hermetic_env()
    for name in [n for n in os.environ if n not in kept]:  # in-process: as make bench's child would run
        monkeypatch.delenv(name)

    spec = importlib.util.spec_from_file_location("bench_tool", os.path.join(KIT, "tools", "bench.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    tree = tree_of(NEWEST)
    with pytest.raises(KitError) as e:
        bench.make_export(tree, bench.TINY_PLAIN, str(tmp_path / "no-such-ckpt"), str(tmp_path / "c.pkl"), [],
                          ENGINE="dygraph")
    assert str(e.value).startswith("bench: make export failed: weights %s" % (tmp_path / "no-such-ckpt")), str(e.value)
    assert "ppocr-center-kit:" not in str(e.value) and git_status(tree) == ""
