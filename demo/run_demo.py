"""`make demo`: the kit's built-in default, end to end on 2 CPU cores within 10 minutes;
`make demo-ab`: the same model, the README's longer A/B comparison.

1. finds a PaddleOCR clone (PADDLEOCR=, else the clone the kit or the current folder sits
   in, else a shallow clone of the newest supported tag);
2. installs the clone's own requirements into the kit's .venv if they are missing;
3. renders look-alike glyphs (synth_dataset.LOOKALIKE_ALPHABET: 0 O D Q, 1 I l 7, 5 S,
   8 B, 2 Z, 6 G in OpenCV's Hershey fonts, some italic, with noise; the Eval lines from
   another seed than the Train lines);
4. trains configs/tiny_distill_ctc_nrtr.yml (Teacher/Student, MultiHead CTC+NRTR) with
   the clone's tools/train.py (the checkpoint is cached in demo-output/ for later runs);
5. `make export`: the Student's centers, and what the pkl holds;
6. `make confusions` on the Eval lines with those centers: which look-alikes the model
   confuses, and how far apart their centers are;
7. `make ab`: fine-tunes the Student from that checkpoint with CenterLoss and, as the
   control, with the center weight 0, the same seeds and epochs, and says whether CenterLoss
   changed the errors (RUNS=1 here: one pair of runs says little; `make demo-ab` runs 5).

Run by the Makefile, which puts the kit's scripts/ on PYTHONPATH.
"""

import argparse
import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys

from centerkit import KIT_ROOT as KIT
from centerkit import KitError, files, releases, run_tool, train_progress
from centerkit.commands import cmd_check
from centerkit.make_commands import make_command, make_export_command, opts_text
from centerkit.supervise import interrupt_on_term, run_kit
from centerkit.tree import find_tree, tool_arguments

UPSTREAM_URL = "https://github.com/PaddlePaddle/PaddleOCR.git"
CONFIG = os.path.join(KIT, "configs", "tiny_distill_ctc_nrtr.yml")
OUT = os.path.join(KIT, "demo-output")
# The data set and training: measured to fit the 10 minutes on 2 cores (docs/training.md)
# and to leave the model look-alike errors to count.
DATA = dict(n_train=600, n_val=200, seed=0, val_seed=1, max_len=2, italic=0.3)
EPOCHS, BATCH = 16, 16
AB_EPOCHS, CENTER_WEIGHT = 3, "0.05"


def get_tree(given, invoked_from):
    if given:
        return find_tree(given, invoked_from)
    for start in (invoked_from, KIT):
        try:
            return find_tree("", start)
        except KitError:
            pass
    tag = releases.load_table()[-1].name
    path = os.path.join(KIT, ".cache", "PaddleOCR-%s" % tag)
    if not os.path.isdir(os.path.join(path, "ppocr")):
        import git

        print("cloning PaddleOCR %s into %s ..." % (tag, path), flush=True)
        partial = path + ".partial"  # renamed into place when complete: a killed clone is redone
        shutil.rmtree(partial, ignore_errors=True)
        try:
            git.Repo.clone_from(UPSTREAM_URL, partial, depth=1, branch=tag)
        except git.GitCommandError:
            raise KitError(
                "no PaddleOCR clone here and %s cannot be cloned (offline?); set "
                "PADDLEOCR=<path to a PaddleOCR clone>" % UPSTREAM_URL
            )
        shutil.rmtree(path, ignore_errors=True)
        os.rename(partial, path)
    return path


def ensure_requirements(tree):
    probe = [sys.executable, "-c", "import paddle, cv2, ppocr.data, ppocr.modeling.architectures, tools.program"]
    if subprocess.run(probe, cwd=tree, capture_output=True).returncode == 0:
        return
    print("installing %s/requirements.txt into the kit's environment ..." % tree, flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", os.path.join(tree, "requirements.txt")], check=True)


def train(tree, paths, model_dir, opts):
    """Train once; (checkpoint, whether it was trained now): it is reused while the config
    and the data recipe are unchanged."""
    with open(CONFIG, "rb") as f:
        key = hashlib.sha256(f.read() + repr((EPOCHS, BATCH, sorted(DATA.items()))).encode()).hexdigest()[:12]
    stamp = os.path.join(model_dir, "recipe")
    ckpt = os.path.join(model_dir, "latest")
    if os.path.isfile(ckpt + ".pdparams") and os.path.isfile(stamp) and open(stamp).read() == key:
        print("reusing the trained checkpoint %s" % ckpt, flush=True)
        return ckpt, False
    shutil.rmtree(model_dir, ignore_errors=True)
    log = os.path.join(OUT, "train.log")
    print("training the tiny distillation model on %d look-alike lines (%d epochs, about 5 minutes on 2 cores; "
          "log: %s) ..." % (DATA["n_train"], EPOCHS, log), flush=True)
    cmd = [sys.executable, "tools/train.py", "-c", CONFIG, "-o", "Global.epoch_num=%d" % EPOCHS,
           "Global.save_model_dir=%s" % model_dir, "Global.print_batch_step=20", "Global.save_epoch_step=%d" % EPOCHS,
           "Train.sampler.first_bs=%d" % BATCH, "Train.loader.batch_size_per_card=%d" % BATCH] + opts
    with open(log, "w") as f, train_progress.reporting("training", os.path.join(model_dir, "train.log")):
        rc = run_kit(cmd, cwd=tree, stdout=f, stderr=subprocess.STDOUT)
    if rc:
        raise KitError("training failed (exit %d); see %s" % (rc, log))
    with open(stamp, "w") as f:
        f.write(key)
    return ckpt, True


def demo(argv):
    p = tool_arguments(__doc__)
    p.add_argument("--runs", type=int, default=1, help="make ab's RUNS (make demo-ab: 5)")
    a = p.parse_args(argv)
    interrupt_on_term()
    tree = get_tree(a.tree, a.invoked_from)
    # `make check` first: an unknown release or a clone the series does not apply to
    # is one line now, not after minutes of training.
    cmd_check(argparse.Namespace(tree=tree, invoked_from=a.invoked_from))
    ensure_requirements(tree)
    from synth_dataset import LOOKALIKE_ALPHABET, make_dataset

    data = os.path.join(OUT, "data")
    paths = make_dataset(data, alphabet=LOOKALIKE_ALPHABET, **DATA)
    opts = ["Global.character_dict_path=%s" % paths["dict"], "Train.dataset.data_dir=%s" % data,
            "Train.dataset.label_file_list=[%s]" % paths["train_list"], "Eval.dataset.data_dir=%s" % data,
            "Eval.dataset.label_file_list=[%s]" % paths["val_list"]]
    ckpt, trained = train(tree, paths, os.path.join(OUT, "model"), opts)
    centers = os.path.join(OUT, "train_center.pkl")
    rc = run_kit(make_export_command(tree, sys.executable, CONFIG, ckpt, centers, opts, FORCE=1), cwd=tree)
    if rc:
        return rc
    with open(centers, "rb") as f:
        held = pickle.load(f)
    with open(files.report_path(centers)) as f:
        report = json.load(f)
    print("\nexport done: %s holds %d centers of width %d (Student, %d of %d Train images recognised); "
          "report: %s" % (centers, len(held), report["feature_width"], report["images_used"],
                          report["images_seen"], files.report_path(centers)), flush=True)
    print("\nwhich look-alikes does the Student confuse on the %d Eval lines? (make confusions)" % DATA["n_val"],
          flush=True)
    rc = run_kit(make_command("confusions", tree, sys.executable, CONFIG=CONFIG, CHECKPOINT=ckpt, CENTERS=centers, FORCE=1, OPTS=opts_text(opts),
                      OUTPUT=os.path.join(OUT, "confusions.json")), cwd=tree)
    if rc:
        return rc
    return ab(tree, ckpt, centers, opts, a.runs, trained)


def ab(tree, ckpt, centers, opts, runs, trained):
    """make ab on the trained model: CenterLoss against the weight 0, RUNS seeds each."""
    output = os.path.join(OUT, "ab-runs%d" % runs)
    if trained:  # the runs of an earlier checkpoint are no A/B of this one
        shutil.rmtree(output, ignore_errors=True)
    print("\ndoes CenterLoss (weight %s, %d epochs) reduce those errors? make ab, %d run(s) per arm, "
          "each about a minute ..." % (CENTER_WEIGHT, AB_EPOCHS, runs), flush=True)
    return run_kit(make_command("ab", tree, sys.executable, CONFIG=CONFIG, CHECKPOINT=ckpt, CENTERS=centers, CENTER_WEIGHT=CENTER_WEIGHT,
                        EPOCHS=AB_EPOCHS, RUNS=runs, OUTPUT=output,
                        OPTS=opts_text(opts + ["Global.print_batch_step=20", "Global.save_epoch_step=%d" % AB_EPOCHS,
                                               "Train.sampler.first_bs=%d" % BATCH,
                                               "Train.loader.batch_size_per_card=%d" % BATCH])), cwd=tree)


if __name__ == "__main__":
    sys.exit(run_tool(demo, sys.argv[1:]))
