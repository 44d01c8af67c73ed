"""Issue 19: `make ab` at tiny sizes (the demo's distillation config, a stand-in checkpoint,
8 images, 1 epoch, 1 run per arm): both arms fine-tune from the same checkpoint, the center
arm with the center loss and the control with weight 0; ab.json is complete and agrees with
each run's confusions file; a rerun resumes without retraining; Ctrl-C leaves the clone
clean and the finished runs intact."""

import json
import os
import signal
import subprocess
import time

import pytest
import yaml
from scipy.stats import binomtest

import tiny_data
from centerkit.make_commands import opts_text
from centerkit.paired_stats import verdict
from centerkit.standin import noise_images
from conftest import NEWEST
from kit_run import git_status, helper_env, make, make_command

RELEASE = NEWEST
CONFIG = tiny_data.config_path("tiny_distill_ctc_nrtr.yml")


class AB:
    """The inputs of make ab (data, a stand-in checkpoint, its exported centers), made once
    per worker (tiny_data.made_once) and only read by make ab; each test's output (OUTPUT=)
    in its own folder."""

    def __init__(self, tree, output):
        self.tree, self.output = tree, output
        self.python = tiny_data.release_python(tree, RELEASE)
        shared, _ = tiny_data.made_once(("ab", tree), self._make)
        data = shared / "data"
        self.opts = self._opts(data)
        self.ckpt, self.centers = str(shared / "ckpt"), str(shared / "train_center.pkl")

    @staticmethod
    def _opts(data):
        return ["Global.character_dict_path=%s" % (data / "dict.txt"), "Train.dataset.data_dir=%s" % data,
                "Train.dataset.label_file_list=[%s]" % (data / "train.txt"), "Eval.dataset.data_dir=%s" % data,
                "Eval.dataset.label_file_list=[%s]" % (data / "train.txt"), "Global.print_batch_step=1"]

    def _make(self, shared):
        data = shared / "data"
        noise_images(str(data), list("12121212"), (32, 64))
        (data / "dict.txt").write_text("".join("%d\n" % i for i in range(10)))
        opts = self._opts(data)
        made = subprocess.run([self.python, "-m", "centerkit.standin", CONFIG, str(shared / "ckpt"), "1"] + opts[:3],
                              cwd=self.tree, env=helper_env(), capture_output=True, text=True)
        assert made.returncode == 0, made.stderr[-3000:]
        r = make("export", cwd=self.tree, env={"PADDLEOCR_VERSION": RELEASE}, PYTHON=self.python, CONFIG=CONFIG,
                 CHECKPOINT=str(shared / "ckpt"), OUTPUT=str(shared / "train_center.pkl"),
                 OPTS=opts_text(opts))
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


    def variables(self):
        return dict(PYTHON=self.python, CONFIG=CONFIG, CHECKPOINT=self.ckpt, CENTERS=self.centers, RUNS="1",
                    EPOCHS="1", CENTER_WEIGHT="0.5", OUTPUT=str(self.output), OPTS=opts_text(self.opts))

    def __call__(self):
        return make("ab", cwd=self.tree, env={"PADDLEOCR_VERSION": RELEASE}, **self.variables())


# both tests on one xdist worker (make test: --dist loadgroup), which makes the inputs once
pytestmark = pytest.mark.xdist_group("ab")


@pytest.fixture
def ab(tree_of, tmp_path):
    return AB(tree_of(RELEASE), tmp_path / "ab")


def test_opts_reach_the_inner_commands_as_the_user_gave_them():
    """make ab (and the demo, bench) split the user's OPTS and pass them on to make train and
    make confusions: a value with a space, a ' #' or quotes stays one item, unchanged."""
    from centerkit.preflight import split_opts

    opts = ["Global.save_model_dir=/tmp/my runs/a #1: x", "Eval.dataset.label_file_list=[/x/a b.txt,/y.txt]",
            "Global.name='q'", 'Global.other="a b"', "Global.epoch_num=3"]
    assert split_opts(opts_text(opts)) == opts
    assert opts_text(["Global.epoch_num=3"]) == "-o Global.epoch_num=3"  # what needs no quotes has none


def derived(run_dir):
    with open(os.path.join(run_dir, "model", "centerkit_train.yml"), encoding="utf-8") as f:
        return yaml.safe_load(f)


def test_make_ab_trains_both_arms_and_resumes(ab):
    r = ab()
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert git_status(ab.tree) == ""
    out = ab.output
    control, center = derived(out / "control-seed1"), derived(out / "center-seed1")
    for config in (control, center):  # the same start, data, epochs and seed
        assert config["Global"]["pretrained_model"] == ab.ckpt and config["Global"]["seed"] == 1
        assert config["Global"]["epoch_num"] == 1
    assert control["Loss"]["kit_center"]["weight"] == 0.0 and center["Loss"]["kit_center"]["weight"] == 0.5
    for arm in ("control", "center"):  # the clone's own log of each run has the center loss term
        log = (out / ("%s-seed1" % arm) / "model" / "train.log").read_text()
        assert "loss_center_Student" in log
    result = json.loads((out / "ab.json").read_text())
    for arm in ("control", "center"):
        runs = result["arms"][arm]["runs"]
        assert [r["seed"] for r in runs] == [1]
        got = json.loads(open(runs[0]["confusions"]).read())
        assert runs[0]["line_accuracy"] == got["line_accuracy"] == result["arms"][arm]["line_accuracy"]["mean"]
        assert runs[0]["char_error_rate"] == got["char_error_rate"]
        assert os.path.isfile(runs[0]["checkpoint"] + ".pdparams")
    base = json.loads((out / "baseline" / "confusions.json").read_text())
    assert result["baseline"]["line_accuracy"] == base["line_accuracy"] and result["baseline"]["lines"] == 8
    # the comparison is of these two runs' lines: counted again here from their own files
    right = {arm: json.loads(open(result["arms"][arm]["runs"][0]["confusions"]).read())["per_line"]["correct"]
             for arm in ("control", "center")}
    lost = sum(a and not b for a, b in zip(right["control"], right["center"]))
    gained = sum(b and not a for a, b in zip(right["control"], right["center"]))
    comparison = result["comparisons"]["center"]
    pooled = comparison["pooled"]
    assert pooled["pairs_of_lines"] == 8 and (pooled["mcnemar"]["lines_lost"], pooled["mcnemar"]["lines_gained"]) == (lost, gained)
    expected_p = binomtest(gained, lost + gained, 0.5).pvalue if lost + gained else 1.0
    assert pooled["mcnemar"]["p_value"] == pytest.approx(expected_p) == pooled["mcnemar"]["p_holm"]  # one comparison
    assert (pooled["detectable_change"] is None) == (lost + gained == 0)
    change = result["arms"]["center"]["line_accuracy"]["mean"] - result["arms"]["control"]["line_accuracy"]["mean"]
    assert comparison["verdict"] == verdict(change, expected_p, pooled["cer_change"]["low"], pooled["cer_change"]["high"])
    assert "verdict: CenterLoss %s" % comparison["verdict"] in r.stdout

    mtime = (out / "center-seed1" / "model" / "latest.pdparams").stat().st_mtime
    r = ab()
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("finished earlier, kept") == 2 and ": make train" not in r.stdout
    assert (out / "center-seed1" / "model" / "latest.pdparams").stat().st_mtime == mtime
    assert git_status(ab.tree) == ""


def test_ctrl_c_in_make_ab_keeps_the_finished_runs_and_the_clone_clean(ab):
    cmd, env = make_command("ab", env={"PADDLEOCR_VERSION": RELEASE}, **ab.variables())
    p = subprocess.Popen(cmd, cwd=ab.tree, env=env, start_new_session=True, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = ""
    for line in p.stdout:
        seen += line
        if "(run 1 of 2): make train" in line:
            time.sleep(3)  # training has started
            os.killpg(p.pid, signal.SIGINT)
            break
    out, err = p.communicate(timeout=300)
    assert p.returncode != 0, seen + out + err
    assert "Traceback" not in err, err[-3000:]
    assert (ab.output / "baseline" / "confusions.json").is_file()  # the finished measurement is kept
    assert not (ab.output / "control-seed1" / "confusions.json").exists()
    assert git_status(ab.tree) == ""


def test_center_weights_name_the_arms():
    from centerkit import KitError
    from centerkit.ab import center_arms

    assert center_arms("0.05") == {"center": "0.05"} and center_arms("") == {"center": ""}
    assert center_arms("0.01, 0.05") == {"center-0.01": "0.01", "center-0.05": "0.05"}
    for bad, says in (("0", "control arm"), ("0.01,0", "control arm"), ("0.05,0.05", "twice"), ("x", "number")):
        with pytest.raises(KitError, match=says):
            center_arms(bad)
