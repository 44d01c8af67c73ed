"""Issue 14: the export's forward engines. ENGINE=inference (the model converted to a static
graph, run by Paddle Inference with oneDNN) gives the centers of ENGINE=dygraph; ENGINE=auto
(the default) takes it when the conversion succeeds and otherwise exports through dygraph with
one log line saying why; converted models live in a temp folder that is gone afterwards.
(The real upstream configs are compared in test_real_configs.py.)"""

import os

import numpy as np
import pytest

import tiny_data
from centerkit import releases
from conftest import NEWEST, NEWEST_NUMPY1, TABLE, newest_of
from centerkit.dropins import kit_export
from kit_run import error_lines, export, fault_env, fault_token, git_status, make, recipe_exit

TINY_CONFIGS = ["tiny_plain_ctc.yml", "tiny_multihead_ctc_sar.yml", "tiny_distill_ctc_nrtr.yml"]
ENGINE_RELEASES = [NEWEST_NUMPY1, NEWEST]  # the newest release on each Paddle 3 environment (release_envs.py)


def assert_same_centers(got, expected, rtol=1e-4):
    """Same classes; each center within rtol of the largest entry of the expected one."""
    assert got and sorted(got) == sorted(expected)
    for c in expected:
        assert got[c].dtype == np.float32 and got[c].shape == expected[c].shape
        scale = float(np.abs(expected[c]).max())
        np.testing.assert_allclose(got[c], expected[c], rtol=rtol, atol=rtol * scale)


class Export:
    """`make export` of one tiny config on a release tree, with a private TMPDIR."""

    def __init__(self, tree, release, config, tmp_path, images=11):
        self.tree, self.release, self.tmp = tree, release, tmp_path
        self.python, _, self.opts, self.ckpt = tiny_data.initialised(tree, release, config, tmp_path, images)
        self.cfg = tiny_data.config_path(config)
        self.tmpdir = tmp_path / "tmp"
        self.tmpdir.mkdir()

    def __call__(self, name, env=None, **variables):
        """(make's result, centers or None, report or None) of an export to <name>.pkl."""
        return export(self.tree, self.release, self.tmp / (name + ".pkl"), self.opts,
                      dict({"TMPDIR": str(self.tmpdir)}, **(env or {})), PYTHON=self.python, CONFIG=self.cfg,
                      CHECKPOINT=self.ckpt, **variables)

    def leftovers(self):
        """The inference engine folders the runs left in their TMPDIR (NPROC keeps its per-rank logs)."""
        return sorted(p.name for p in self.tmpdir.iterdir() if p.name.startswith("ppocr-center-kit-engine-"))


@pytest.fixture
def export_on(tree_of, tmp_path):
    def make_export(release, config="tiny_plain_ctc.yml", images=11):
        return Export(tree_of(release), release, config, tmp_path, images)
    return make_export


@pytest.mark.parametrize("config", TINY_CONFIGS)
@pytest.mark.parametrize("release", ENGINE_RELEASES)
def test_inference_engine_equals_dygraph(export_on, release, config):
    run = export_on(release, config)
    results = {}
    for engine in ("dygraph", "inference"):
        r, centers, report = run(engine, ENGINE=engine)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        assert report["engine"] == engine and ("engine: %s" % engine) in r.stdout + r.stderr
        assert set(report["seconds_by_part"]) == {"convert", "load", "forward", "accumulate", "loop"}
        assert (report["seconds_by_part"]["convert"] > 0) == (engine == "inference")
        assert (report["engine_agreement"] is None) == (engine == "dygraph")
        results[engine] = centers
    assert report["engine_agreement"]["max_abs_diff"] <= 1e-3 * report["engine_agreement"]["feature_scale"]
    assert_same_centers(results["inference"], results["dygraph"])
    print("engine agreement %s %s: first batch max|diff|/scale %.2g, step relative L2 %.2g; max center relative L2 %.2g"
          % (release, config, report["engine_agreement"]["max_abs_diff_over_scale"],
             report["engine_agreement"]["max_step_relative_l2"],
             max(np.linalg.norm(results["inference"][c] - results["dygraph"][c]) / np.linalg.norm(results["dygraph"][c])
                 for c in results["dygraph"])))
    assert run.leftovers() == []  # the converted model's folder is removed
    assert git_status(run.tree) == ""


def test_inference_engine_on_two_processes(export_on):
    """NPROC=2, one predictor per rank, against one dygraph process."""
    run = export_on(NEWEST, "tiny_multihead_ctc_sar.yml")
    r1, one, _ = run("one", ENGINE="dygraph")
    r2, two, report = run("two", ENGINE="inference", NPROC=2)
    assert r1.returncode == 0 and r2.returncode == 0, r2.stdout[-3000:] + r2.stderr[-3000:]
    assert report["engine"] == "inference" and report["images_seen"] == 11
    assert_same_centers(two, one)
    assert run.leftovers() == []
    assert git_status(run.tree) == ""


def armed(run, event):
    return fault_env(fault_token(run.tmp), CENTERKIT_CHILD_FAULT=event)


def test_auto_exports_through_dygraph_when_the_model_cannot_be_converted(export_on):
    run = export_on(NEWEST)
    r, dygraph, _ = run("dygraph", ENGINE="dygraph")
    assert r.returncode == 0, r.stderr[-3000:]
    r, auto, report = run("auto", env=armed(run, "convert:-:UNSUPPORTED"))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    why = [l for l in (r.stdout + r.stderr).splitlines() if "engine:" in l]
    assert len(why) == 1 and "engine: dygraph (the inference engine is unavailable:" in why[0]
    assert "to_static cannot convert" in why[0]
    assert report["engine"] == "dygraph"
    assert_same_centers(auto, dygraph, rtol=1e-6)
    assert run.leftovers() == []
    assert git_status(run.tree) == ""


def test_engine_inference_that_cannot_convert_is_a_one_line_error(export_on):
    run = export_on(NEWEST)
    r, _, _ = run("inference", env=armed(run, "convert:-:UNSUPPORTED"), ENGINE="inference")
    assert recipe_exit(r) == 2, r.stderr[-3000:]
    lines = error_lines(r)
    assert len(lines) == 1 and "ENGINE=inference: the model cannot run on Paddle Inference" in lines[0]
    assert "pass ENGINE=dygraph" in lines[0]
    assert not (run.tmp / "inference.pkl").exists() and run.leftovers() == []
    assert git_status(run.tree) == ""


def test_mode_train_exports_through_dygraph(export_on):
    """The stock-faithful MODE=train runs layers in train mode, which an inference graph is
    not: auto takes dygraph and says so, ENGINE=inference is refused before anything runs."""
    run = export_on(NEWEST)
    r, centers, report = run("train", MODE="train")
    assert r.returncode == 0, r.stderr[-3000:]
    assert centers and report["engine"] == "dygraph" and "engine: dygraph (MODE=train" in r.stdout + r.stderr
    assert report["seconds_by_part"]["convert"] == 0 and run.leftovers() == []  # no conversion tried
    r, _, _ = run("refused", MODE="train", ENGINE="inference")
    assert recipe_exit(r) == 2 and len(error_lines(r)) == 1 and "pass ENGINE=dygraph" in error_lines(r)[0]
    assert not (run.tmp / "refused.pkl").exists() and git_status(run.tree) == ""


def test_unknown_engine_is_a_one_line_error(export_on):
    run = export_on(NEWEST, images=3)
    r, _, _ = run("x", ENGINE="tensorflow")
    assert recipe_exit(r) == 2 and len(error_lines(r)) == 1
    assert "ENGINE=tensorflow is not one of auto, inference, dygraph" in error_lines(r)[0]


# The check a new predictor's first outputs must pass (pure numpy: runs without Paddle).
def outputs(seed=0, batch=4, steps=6, width=8, classes=5):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, steps, width)).astype(np.float32), rng.integers(0, classes, (batch, steps))


def test_check_accepts_outputs_equal_within_tolerance():
    feats, idx = outputs()
    reference = (feats[:2] + 1e-5, idx[:2])
    kit_export.engines.check_same_outputs(reference, (feats, idx))


@pytest.mark.parametrize("spoil", ["features", "argmax", "shape"])
def test_check_refuses_outputs_that_differ(spoil):
    feats, idx = outputs()
    ref_feats, ref_idx = feats[:2].copy(), idx[:2].copy()
    if spoil == "features":
        ref_feats[1, 3, 2] += 0.1
    elif spoil == "argmax":
        ref_idx[0, 0] = (ref_idx[0, 0] + 1) % 5
    else:
        ref_feats = ref_feats[:, :5]
    with pytest.raises(ValueError, match="converted model"):
        kit_export.engines.check_same_outputs((ref_feats, ref_idx), (feats, idx))


def real_config_methods():
    """The methods of the real paddle.inference.Config, or a skip without Paddle."""
    inference = pytest.importorskip("paddle.inference")
    return {n for n in dir(inference.Config) if not n.startswith("_")}


class RecordingConfig:
    """paddle.inference.Config as a recorder of the options set on it; a name the real
    Config does not have is an AttributeError, as it would be in Paddle."""

    methods = set()

    def __init__(self, *files):
        self.calls = [("files", tuple(os.path.basename(f) for f in files))]

    def __getattr__(self, name):
        if name not in self.methods:
            raise AttributeError("paddle.inference.Config has no %s" % name)
        return lambda *args, **kwargs: self.calls.append((name, args, kwargs))


@pytest.mark.parametrize("device", ["cpu", "gpu", "gpu+tensorrt"])
def test_predictor_options_per_device(monkeypatch, tmp_path, device):
    """What the predictor is asked for on each device (no GPU here: a stand-in paddle):
    oneDNN and the thread count on the CPU only, the rank's GPU given, TensorRT only when asked,
    for the batch shape the graph was converted for."""
    import sys
    import types

    monkeypatch.setattr(RecordingConfig, "methods", real_config_methods())
    made = []
    inference = types.SimpleNamespace(Config=RecordingConfig, PrecisionType=types.SimpleNamespace(Float32="fp32"),
                                      create_predictor=lambda config: made.append(config) or "predictor")
    monkeypatch.setitem(sys.modules, "paddle", types.SimpleNamespace(inference=inference))
    monkeypatch.setitem(sys.modules, "paddle.inference", inference)
    (tmp_path / "model.json").write_text("{}")
    deleted = ["self_attention_fuse_pass"] if device == "cpu" else []
    predictor, describe = kit_export.engines.new_predictor(str(tmp_path), None if device == "cpu" else 3, 5, device.endswith("tensorrt"),
                                           (16, 3, 48, 320), deleted)
    assert predictor == "predictor"
    calls = {c[0]: c[1:] for c in made[0].calls}
    assert calls["files"] == (("model.json", "model.pdiparams"),)  # the PIR graph Paddle 3 saves
    assert calls["set_optim_cache_dir"][0] == (str(tmp_path),)  # caches in the temp folder
    if device == "cpu":
        assert {"enable_mkldnn", "disable_gpu"} <= set(calls) and calls["set_cpu_math_library_num_threads"][0] == (5,)
        assert "enable_use_gpu" not in calls and describe == "CPU, oneDNN, 5 threads, without self_attention_fuse_pass"
        assert calls["delete_pass"][0] == ("self_attention_fuse_pass",)
    else:
        assert calls["enable_use_gpu"][0] == (512, 3) and "enable_mkldnn" not in calls and "delete_pass" not in calls
        assert ("enable_tensorrt_engine" in calls) == (device == "gpu+tensorrt")
        if device == "gpu+tensorrt":
            assert calls["set_trt_dynamic_shape_info"][0] == (
                {"x": [1, 3, 48, 320]}, {"x": [16, 3, 48, 320]}, {"x": [16, 3, 48, 320]})
            assert describe == "GPU 3, TensorRT"


# Issue 20: the default engine never crashes where dygraph works. A native crash (SIGILL of
# Paddle 2.6's oneDNN on CPUs without AVX-512, any SIGSEGV) kills the export process, where
# no Python fallback can run: the kit reruns the export on dygraph. This machine's CPU may
# never crash, so the crashes are injected where they happen: the predictor's construction
# and its first batch, SIGILL and SIGSEGV, each its own code path in Paddle's handler chain.
# The phase and the signal are read apart (the phase from the child's marker, the signal from
# its exit), so each phase and each signal is rerun once here (each rerun is two exports);
# the other two pairs are the tests below: (predictor, ILL) with ENGINE=inference, and
# (first-batch, SEGV) on two processes.
NATIVE_CRASHES = [("predictor", "SEGV"), ("first-batch", "ILL")]
PHASE_WORDS = {"predictor": "building the Paddle Inference predictor", "first-batch": "running the predictor's first batch"}


def commands_run(r):
    return sum(l.startswith("+ ") for l in r.stdout.splitlines())


def rerun_lines(r):
    return [l for l in r.stderr.splitlines() if "rerunning it once on dygraph" in l]


def test_a_native_crash_of_the_engine_is_rerun_on_dygraph(export_on):
    run = export_on(NEWEST)
    r, dygraph, _ = run("dygraph", ENGINE="dygraph")
    assert r.returncode == 0, r.stderr[-3000:]
    for phase, sig in NATIVE_CRASHES:
        r, centers, report = run("auto-%s-%s" % (phase, sig), env=armed(run, "%s:-:%s" % (phase, sig)))
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        lines = rerun_lines(r)
        assert len(lines) == 1, r.stderr[-3000:]
        assert "the export died of SIG%s while %s" % (sig, PHASE_WORDS[phase]) in lines[0]
        assert commands_run(r) == 2 and r.stdout.count("reverted series") == 1  # one revert, at the end
        assert report["engine"] == "dygraph" and report["engine_agreement"] is None
        assert report["engine_fallback"] == {"signal": "SIG" + sig, "phase": phase, "requested": "auto"}
        assert "engine: dygraph (the kit's rerun: the inference engine died of SIG%s" % sig in r.stdout + r.stderr
        assert_same_centers(centers, dygraph, rtol=1e-6)  # the dygraph export's pkl, written once
        assert sorted(p.name for p in run.tmp.glob("auto-%s-%s*" % (phase, sig))) == [
            "auto-%s-%s.%s" % (phase, sig, ext) for ext in ("pkl", "report.json", "samples.png")]
        assert list(run.tmpdir.iterdir()) == []  # the converted model went with the kit's state folder
        assert git_status(run.tree) == ""


def test_engine_inference_that_crashes_is_an_error_naming_the_signal(export_on):
    run = export_on(NEWEST, images=3)
    r, _, _ = run("inference", env=armed(run, "predictor:-:ILL"), ENGINE="inference")
    assert r.returncode != 0 and recipe_exit(r) == 128 + 4  # the child's death, as the shell reports it
    lines = error_lines(r)
    assert len(lines) == 1 and "ENGINE=inference: the export died of SIGILL while building the Paddle " \
        "Inference predictor; pass ENGINE=dygraph" in lines[0]
    assert rerun_lines(r) == [] and commands_run(r) == 1
    assert not list(run.tmp.glob("inference*")) and run.leftovers() == []
    assert git_status(run.tree) == ""


def test_a_crash_on_two_processes_is_rerun_on_two(export_on):
    """Under paddle's launcher the kit sees the launcher's exit code, not the rank's signal:
    the rank's faulthandler line names it."""
    run = export_on(NEWEST, "tiny_multihead_ctc_sar.yml")
    r, centers, report = run("two", env=armed(run, "first-batch:-:SEGV"), NPROC=2)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    lines = rerun_lines(r)
    assert len(lines) == 1 and "died of SIGSEGV while running the predictor's first batch" in lines[0]
    assert report["engine"] == "dygraph" and report["engine_fallback"]["signal"] == "SIGSEGV"
    assert report["images_seen"] == 11 and r.stdout.count("running 2 CPU processes") == 1
    assert r.stdout.count("reverted series") == 1 and git_status(run.tree) == ""


@pytest.mark.parametrize("version,flags,deleted", [
    ("2.6.2", {"sse4_2", "avx", "avx2", "fma"}, True),  # AMD EPYC: AVX2, no AVX-512
    ("2.6.2", {"avx2", "avx512f", "avx512bw"}, False),  # Intel Xeon with AVX-512
    ("2.6.2", None, True),  # flags unknown (not Linux): the fusion is only a speed-up
    ("3.3.1", {"avx2"}, False),  # Paddle 3's pass does not crash there
    ("3.0.0", None, False),
])
def test_fuse_pass_removal_rule(version, flags, deleted):
    names, why = kit_export.engines.passes_to_delete(version, flags)
    assert names == (["self_attention_fuse_pass"] if deleted else [])
    assert (why is not None) == deleted and (not deleted or version in why)


def test_cpu_flags_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx2\nbugs\t\t: x\n\n"
                    "processor\t: 1\nflags\t\t: fpu sse2 avx2\n")
    assert kit_export.engines.cpu_flags(str(info)) == {"fpu", "sse2", "avx2"}
    assert kit_export.engines.cpu_flags(str(tmp_path / "none")) is None


# the newest release on Paddle 2.6.2 (release_envs.py); the v2.7 series has NRTRHead, which the config needs
@pytest.mark.parametrize("release", [newest_of("v2.7")])
def test_paddle_2_on_a_cpu_without_avx512_builds_the_predictor_without_the_pass(export_on, release):
    """The rule end to end on Paddle 2.6.2, with /proc/cpuinfo read as an AMD EPYC's: the
    predictor is built without the pass, says so, and still passes the agreement check."""
    run = export_on(release, "tiny_distill_ctc_nrtr.yml")
    r, dygraph, _ = run("dygraph", ENGINE="dygraph")
    assert r.returncode == 0, r.stderr[-3000:]
    r, centers, report = run("auto", env=armed(run, "cpuinfo:-:NOAVX512"))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout + r.stderr
    assert "engine: the predictor is built without self_attention_fuse_pass (Paddle 2.6.2 on a CPU without AVX-512" in out
    assert "without self_attention_fuse_pass; converted in" in out and report["engine"] == "inference"
    assert report["engine_agreement"]["max_abs_diff_over_scale"] <= 1e-3
    assert_same_centers(centers, dygraph)
    assert git_status(run.tree) == ""


# Issue 22: a release the table does not list works when a series applies cleanly, and says
# it is not yet proven: in make check, in every command's output and in the report.
def test_an_unlisted_release_uses_the_series_that_applies_and_says_it_is_unproven(export_on):
    run = export_on(NEWEST, images=3)
    newer = "v%d.%d.0" % (releases.parse_version(NEWEST)[0], releases.parse_version(NEWEST)[1] + 1)
    r = make("check", cwd=run.tree, env={"PADDLEOCR_VERSION": newer})
    assert r.returncode == 0, r.stderr
    assert "ok: PaddleOCR %s, series %s applies cleanly" % (newer, TABLE[-1].series) in r.stdout
    assert "this release is not yet proven" in r.stdout
    notes = [l for l in r.stderr.splitlines() if l.startswith("ppocr-center-kit: note:")]
    assert len(notes) == 1 and "is not in the release table; series %s applies cleanly" % TABLE[-1].series in notes[0]
    r, centers, report = run("unlisted", env={"PADDLEOCR_VERSION": newer})
    assert r.returncode == 0, r.stderr[-3000:]
    assert sum("not yet proven" in l for l in r.stderr.splitlines()) == 1
    assert (report["release"], report["series"], report["release_proven"]) == (newer, TABLE[-1].series, False)
    assert "not yet proven: series %s by dry run" % TABLE[-1].series in r.stdout
    r, _, listed = run("listed")
    assert listed["release_proven"] is True and "not yet proven" not in r.stdout + r.stderr
    assert git_status(run.tree) == ""


def test_a_killed_runs_state_folder_goes_with_the_next_run_and_with_revert(export_on):
    """SIGKILL skips every finally: the engine's state folder (the converted model in it)
    stays in TMPDIR. It has one name per tree, so the next run and `make revert` remove it."""
    import tempfile

    from centerkit import engine_rerun

    run = export_on(NEWEST, images=3)
    saved, tempfile.tempdir = tempfile.tempdir, str(run.tmpdir)
    try:
        stale = engine_rerun.state_folder(run.tree)
    finally:
        tempfile.tempdir = saved
    for step in ("export", "revert"):
        os.makedirs(os.path.join(stale, "model"))
        open(os.path.join(stale, "model", "inference.pdiparams"), "wb").close()
        if step == "export":
            r, _, _ = run("after-kill")
        else:
            r = make("revert", cwd=run.tree, env={"TMPDIR": str(run.tmpdir), "PADDLEOCR_VERSION": NEWEST})
        assert r.returncode == 0, r.stderr[-3000:]
        assert list(run.tmpdir.iterdir()) == [], step
    assert git_status(run.tree) == ""
