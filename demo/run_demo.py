"""`make demo`: the kit's built-in default, end to end on 2 CPU cores in a few minutes.

1. finds a PaddleOCR clone (PADDLEOCR=, else the clone the kit or the current folder sits
   in, else a shallow clone of the newest supported tag);
2. installs the clone's own requirements into the kit's .venv if they are missing;
3. renders a synthetic digit set (synth_dataset.py);
4. trains configs/tiny_distill_ctc_nrtr.yml (Teacher/Student, MultiHead CTC+NRTR) with
   the clone's tools/train.py (the checkpoint is cached in demo-output/ for later runs);
5. runs `make export` on it and prints what the pkl holds;
6. fine-tunes the Student with its own centers (`make train`, CenterLoss on the Student,
   FINETUNE_EPOCHS epochs) and prints, before and after, the center loss and the mean
   distance of each recognised step's feature to its own class center over the mean
   distance to the nearest other center (center_figures.py; same centers both times).

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
from centerkit.commands import cmd_check, make_export_command
from centerkit.tree import find_tree, tool_arguments

UPSTREAM_URL = "https://github.com/PaddlePaddle/PaddleOCR.git"
CONFIG = os.path.join(KIT, "configs", "tiny_distill_ctc_nrtr.yml")
OUT = os.path.join(KIT, "demo-output")
EPOCHS = 12
FINETUNE_EPOCHS = 4
N_TRAIN, MAX_LEN = 600, 3


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


def train(tree, data, model_dir, opts):
    """Train once; the checkpoint is reused while the config and data recipe are unchanged."""
    with open(CONFIG, "rb") as f:
        key = hashlib.sha256(f.read() + repr((EPOCHS, N_TRAIN, MAX_LEN)).encode()).hexdigest()[:12]
    stamp = os.path.join(model_dir, "recipe")
    ckpt = os.path.join(model_dir, "latest")
    if os.path.isfile(ckpt + ".pdparams") and os.path.isfile(stamp) and open(stamp).read() == key:
        print("reusing the trained checkpoint %s" % ckpt, flush=True)
        return ckpt
    print("training the tiny distillation model (%d epochs, a few minutes on 2 cores) ..." % EPOCHS, flush=True)
    cmd = [sys.executable, "tools/train.py", "-c", CONFIG, "-o", "Global.epoch_num=%d" % EPOCHS,
           "Global.save_model_dir=%s" % model_dir, "Global.print_batch_step=20",
           "Eval.dataset.data_dir=%s" % data, "Eval.dataset.label_file_list=[%s]" % os.path.join(data, "train_list.txt")] + opts
    with open(os.path.join(OUT, "train.log"), "w") as log, \
            train_progress.reporting("training", os.path.join(model_dir, "train.log")):
        subprocess.run(cmd, cwd=tree, check=True, stdout=log, stderr=subprocess.STDOUT)
    with open(stamp, "w") as f:
        f.write(key)
    return ckpt


def demo(argv):
    a = tool_arguments(__doc__).parse_args(argv)
    tree = get_tree(a.tree, a.invoked_from)
    # `make check` first: an unknown release or a clone the series does not apply to
    # is one line now, not after minutes of training.
    cmd_check(argparse.Namespace(tree=tree, invoked_from=a.invoked_from))
    ensure_requirements(tree)
    from synth_dataset import make_dataset

    data = os.path.join(OUT, "data")
    paths = make_dataset(data, n_train=N_TRAIN, n_val=0, seed=0, max_len=MAX_LEN)
    opts = ["Global.character_dict_path=%s" % paths["dict"], "Train.dataset.data_dir=%s" % data,
            "Train.dataset.label_file_list=[%s]" % paths["train_list"]]
    ckpt = train(tree, data, os.path.join(OUT, "model"), opts)
    output = os.path.join(OUT, "train_center.pkl")
    cmd = make_export_command(tree, sys.executable, CONFIG, ckpt, output, opts, FORCE=1)
    rc = subprocess.run(cmd, cwd=tree).returncode
    if rc:
        return rc
    with open(output, "rb") as f:
        centers = pickle.load(f)
    with open(files.report_path(output)) as f:
        report = json.load(f)
    print("\nexport done: %s holds %d centers of width %d (Student, %d of %d images recognised); "
          "report: %s" % (output, len(centers), report["feature_width"], report["images_used"],
                          report["images_seen"], files.report_path(output)))
    return finetune(tree, data, ckpt, output, opts)


def center_figures(tree, ckpt, centers, opts):
    cmd = [sys.executable, os.path.join(KIT, "demo", "center_figures.py"), CONFIG, ckpt, centers] + opts
    r = subprocess.run(cmd, cwd=tree, capture_output=True, text=True)
    if r.returncode:
        raise KitError("measuring the centers failed: %s" % (r.stderr.strip().splitlines() or ["?"])[-1])
    return json.loads(r.stdout.splitlines()[-1])


def _figure(value, digits):
    """A figure of center_figures, or n/a (no recognised step; one class: no other center)."""
    return "n/a" if value is None else "%.*f" % (digits, value)


def finetune(tree, data, ckpt, centers, opts):
    """make train: the Student fine-tuned with its own centers; the figures before and after."""
    before = center_figures(tree, ckpt, centers, opts)
    model_dir = os.path.join(OUT, "finetune")
    shutil.rmtree(model_dir, ignore_errors=True)
    train_opts = opts + ["Global.epoch_num=%d" % FINETUNE_EPOCHS, "Global.save_model_dir=%s" % model_dir,
                         "Global.print_batch_step=20", "Global.save_epoch_step=%d" % FINETUNE_EPOCHS,
                         "Eval.dataset.data_dir=%s" % data,
                         "Eval.dataset.label_file_list=[%s]" % os.path.join(data, "train_list.txt")]
    print("\nfine-tuning the Student with its centers (make train, %d epochs) ..." % FINETUNE_EPOCHS, flush=True)
    cmd = ["make", "--no-print-directory", "-f", os.path.join(KIT, "Makefile"), "train", "PADDLEOCR=%s" % tree,
           "PYTHON=%s" % sys.executable, "CONFIG=%s" % CONFIG, "CHECKPOINT=%s" % ckpt, "CENTERS=%s" % centers,
           "OPTS=%s" % " ".join("-o " + o for o in train_opts)]
    with open(os.path.join(OUT, "finetune.log"), "w") as log, \
            train_progress.reporting("fine-tuning", os.path.join(model_dir, "train.log")):
        rc = subprocess.run(cmd, cwd=tree, stdout=log, stderr=subprocess.STDOUT).returncode
    if rc:
        raise KitError("make train failed (exit %d); see %s" % (rc, os.path.join(OUT, "finetune.log")))
    after = center_figures(tree, os.path.join(model_dir, "latest"), centers, opts)
    print("\n                 center loss   own/nearest-other distance   images recognised")
    for label, f in (("before", before), ("after %d epochs" % FINETUNE_EPOCHS, after)):
        print("  %-15s %10s   %26s   %d of %d" % (label, _figure(f["center_loss"], 4), _figure(f["separation"], 3),
                                                  f["images_used"], f["images_seen"]))
    print("(the Student's CTC features of the steps of the images it recognises, against the exported "
          "centers; lower = tighter, better separated classes; log: %s)" % os.path.join(OUT, "finetune.log"))
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(demo, sys.argv[1:]))
