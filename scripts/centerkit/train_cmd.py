"""`make train` and `make train-config`: train with the exported centers in a clone.

make train-config: derive the training config (centerkit.train_config), check the centers
against the chosen model in the clone, write the YAML into Global.save_model_dir.
make train: the same, then the series applied, the clone's own tools/train.py run on the
derived YAML (under paddle.distributed.launch for NPROC>1), and the series reverted on
exit, failure or Ctrl-C, as make export does.
"""

import json
import os
import shlex
import subprocess
import sys
import tempfile

from . import KitError, dropins, export_errors, files, preflight, train_progress
from . import train_config as tc
from .dropins import kit_export
from .patched_run import run_patched
from .supervise import launcher, process_count
from .tree import find_tree

ARGS = ("tree", "config", "centers", "center_weight", "model", "checkpoint", "opts", "python", "nproc", "config_only")


def add_arguments(parser):
    for name in ARGS:
        parser.add_argument("--" + name.replace("_", "-"), default="")


def _abs(path, base):
    return os.path.abspath(os.path.join(base, path))


def center_weight(text):
    """CENTER_WEIGHT= as a float >= 0 (None when empty), or KitError."""
    if text in (None, ""):
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not value >= 0:  # 0: the same code path without the pull, make ab's control arm
        raise KitError("CENTER_WEIGHT=%s is not a number >= 0; pass e.g. CENTER_WEIGHT=0.05" % text)
    return value


def run_probe(tree, python, config, chosen, centers, inference=None, converted=None):
    if converted:
        os.makedirs(os.path.dirname(converted), exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ppocr-center-kit-probe-") as tmp:
        given = os.path.join(tmp, "probe.json")
        with open(given, "w", encoding="utf-8") as f:
            json.dump({"config": config, "chosen": chosen, "centers": centers,
                       "inference": inference, "converted": converted}, f)
        # centerkit is importable: the Makefile's KITPATH is in this process's environment
        r = subprocess.run([python, "-m", "centerkit.train_config", "probe", given], cwd=tree,
                           capture_output=True, text=True)
    lines = r.stdout.strip().splitlines()
    if r.returncode or not lines:
        last = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise KitError("could not build the model of this config with %s in %s (%s); check CONFIG, OPTS and PYTHON" % (python, tree, last))
    result = json.loads(lines[-1])
    if "error" in result:
        raise KitError(result["error"].replace("ppocr-center-kit: ", ""))
    return result


def centers_report(centers):
    """The export's report beside the centers pkl, or None (centers from elsewhere)."""
    path = files.report_path(centers)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            report = json.load(f)
    except (OSError, ValueError) as e:
        raise KitError("%s cannot be read as JSON (%s); delete it or re-export the centers" % (path, e))
    return report if isinstance(report, dict) else {}


def _describe(model):
    return "sub-model %s" % model if model else "a single-model config"


def check_report(centers, report, chosen, found=None):
    """KitError when the export's report says the centers are another model's (another
    sub-model, a single model for a Distillation one or the reverse) or, once the probe
    found them (found), another dictionary's: training would start on wrong centers,
    silently when widths and classes happen to match."""
    if report is None:
        return
    fix = "pass centers that make export wrote for this CONFIG%s, or move %s aside to train with these anyway" % (
        " and MODEL=%s" % ",".join(chosen) if chosen else "", files.report_path(centers))
    if found is None:
        if "model" in report and report["model"] not in (chosen or [None]):
            raise KitError("CENTERS=%s were exported from %s (its report.json says so), but this run trains %s; %s"
                           % (centers, _describe(report["model"]), " and ".join(map(_describe, chosen or [None])), fix))
        return
    digest = report.get("characters_sha256")
    if digest and digest != found["characters_sha256"]:
        raise KitError("CENTERS=%s were exported with another dictionary (%s classes, its report.json says) than this "
                       "config's Global.character_dict_path and use_space_char (%d classes); %s"
                       % (centers, report.get("dictionary_size", "?"), found["num_classes"], fix))


def derive(a):
    """(tree, derived config path, python, derived config): everything checked, the YAML written."""
    tree = find_tree(a.tree, a.invoked_from)
    python = a.python or sys.executable
    config_path = preflight.resolve_config(tree, a.config, a.invoked_from)
    opts = preflight.split_opts(a.opts)
    with export_errors():
        config = kit_export.config.load_config(config_path, kit_export.config.parse_opts(opts))
    weight = center_weight(a.center_weight)
    chosen = tc.chosen_models(config, a.model)
    tc.check(config, chosen)
    centers = preflight.centers_path(a.centers, a.invoked_from)
    checkpoint, inference = None, None
    if a.checkpoint:
        checkpoint = kit_export.config.checkpoint_prefix(_abs(a.checkpoint, a.invoked_from))
        if dropins.check_weights(checkpoint) == "inference":
            if chosen:
                raise KitError("CHECKPOINT=%s is an inference model, which holds one model, and CONFIG is a "
                               "Distillation config; pass the config of that one model (e.g. the Student's "
                               "*_rec.yml)" % checkpoint)
            inference = checkpoint
    report = centers_report(centers)
    check_report(centers, report, chosen)
    preflight.check_data(tree, config["Train"]["dataset"])
    if isinstance(config.get("Eval"), dict) and config["Eval"].get("dataset"):  # tools/train.py reads it too
        preflight.check_data(tree, config["Eval"]["dataset"], "Eval")
    preflight.check_python(tree, python)
    converted = tc.converted_path(tree, config) if inference else None
    found = run_probe(tree, python, config, chosen, centers, inference, converted)
    check_report(centers, report, chosen, found)
    derived = tc.derive(config, centers, weight, chosen, found["num_classes"], found["width"], found["cuda"],
                        converted or checkpoint, found.get("weights"))
    path = tc.derived_path(tree, derived)
    note = tc.inference_note(derived, found["weights"]) if inference else None
    tc.write(derived, path, note)
    if note:
        print(note, flush=True)
    print("wrote %s (CenterLoss on %s, %d classes, features %d wide, weight %g)" % (
        path, ", ".join(chosen) or "the model", found["num_classes"], found["width"], derived["Loss"]["kit_center"]["weight"]), flush=True)
    return tree, path, python, derived


def cmd_train(a):
    process_count(a.nproc)  # a bad NPROC before anything else
    tree, path, python, derived = derive(a)
    if a.config_only not in ("", "0"):
        print("train with it on your own launcher between `make apply` and `make revert`:\n"
              "  python tools/train.py -c %s" % shlex.quote(os.path.relpath(path, tree) if path.startswith(tree + os.sep) else path))
        return 0
    launch, launch_env = launcher(a.nproc, bool(derived["Global"].get("use_gpu")), python)
    log = os.path.join(os.path.dirname(path), "train.log")  # tools/program.py's, in Global.save_model_dir
    with train_progress.reporting("make train", log):
        return run_patched(tree, [python, *launch, "tools/train.py", "-c", path], env=launch_env)
