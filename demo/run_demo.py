"""`make demo`: the kit's built-in default, end to end on 2 CPU cores in a few minutes.

1. finds a PaddleOCR clone (PADDLEOCR=, else the clone the kit or the current folder sits
   in, else a shallow clone of the newest supported tag);
2. installs the clone's own requirements into the kit's .venv if they are missing;
3. renders a synthetic digit set (synth_dataset.py);
4. trains configs/tiny_distill_ctc_nrtr.yml (Teacher/Student, MultiHead CTC+NRTR) with
   the clone's tools/train.py (the checkpoint is cached in demo-output/ for later runs);
5. runs `make export` on it and prints what the pkl holds.

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
from centerkit import KitError, releases, run_tool
from centerkit.commands import cmd_check, make_export_command
from centerkit.tree import find_tree, tool_arguments

UPSTREAM_URL = "https://github.com/PaddlePaddle/PaddleOCR.git"
CONFIG = os.path.join(KIT, "configs", "tiny_distill_ctc_nrtr.yml")
OUT = os.path.join(KIT, "demo-output")
EPOCHS = 12
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
    with open(os.path.join(OUT, "train.log"), "w") as log:
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
    with open(os.path.splitext(output)[0] + ".report.json") as f:
        report = json.load(f)
    print("\ndemo done: %s holds %d centers of width %d (Student, %d of %d images recognised); "
          "report: %s" % (output, len(centers), report["feature_width"], report["images_used"],
                          report["images_seen"], os.path.splitext(output)[0] + ".report.json"))
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(demo, sys.argv[1:]))
