"""`make ab`: does CenterLoss reduce the model's errors? A controlled comparison.

Arms fine-tune from the same checkpoint, with the same data, epochs and seeds (Global.seed
= 1 ... RUNS): `control` runs the kit's derived config with the center weight 0 (the same
code path, the same loss graph, no pull towards the centers), `center` with CENTER_WEIGHT;
with a list (CENTER_WEIGHT=0.01,0.05) one arm per weight, `center-<weight>`, each compared
with the control, Holm's correction for the number of comparisons in the verdicts. Each
run's final weights (`latest`) are measured by `make confusions` on the Eval set, and so is
the starting checkpoint once (the baseline). Runs go control, center(s), control, ... so a
machine's load changes every arm alike.

OUTPUT (default ab-<config name>/) holds <arm>-seed<N>/ per run (model/ with the clone's own
train.log and weights, train.log and confusions.log of the kit's commands, confusions.json)
and ab.json, rewritten from the finished runs each time. A run is finished when its
confusions.json exists (written last, atomically): a rerun with the same OUTPUT skips it and
redoes an unfinished one from the start; Ctrl-C stops the current run (the clone reverted by
make train / make confusions themselves) and keeps the finished ones.
"""

import contextlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np

from . import PREFIX, VERSION, KitError, dropins, files, preflight, train_cmd, train_progress
from .dropins import kit_export
from .make_commands import make_command, opts_text
from .supervise import interrupt_on_term, run_kit
from .tree import find_tree

CONTROL = "control"
ARGS = ("tree", "config", "checkpoint", "centers", "center_weight", "model", "epochs", "runs", "output", "opts",
        "python", "nproc", "engine")
DEFAULT_RUNS = 3
TOP_PAIRS = 10


def add_arguments(parser):
    for name in ARGS:
        parser.add_argument("--" + name.replace("_", "-"), default="")


def _count(text, name, default, low=1):
    if text in (None, ""):
        return default
    if not str(text).isdigit() or int(text) < low:
        raise KitError("%s=%s is not a whole number >= %d; pass e.g. %s=%d" % (name, text, low, name, max(low, default or 1)))
    return int(text)


def _run_logged(cmd, log_path, label, progress_log=None):
    """Run a kit command with its output in log_path (a progress line every 30 s from the
    clone's train.log when progress_log is given); KitError naming the log on failure."""
    with open(log_path, "w", encoding="utf-8") as log:
        with train_progress.reporting(label, progress_log) if progress_log else contextlib.nullcontext():
            rc = run_kit(cmd, stdout=log, stderr=subprocess.STDOUT)
    if rc:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            errors = [l for l in f.read().splitlines() if l.startswith(PREFIX)]
        raise KitError("%s failed (exit %d%s); see %s" % (label, rc, ": " + errors[-1] if errors else "", log_path))


class Plan:
    """What an A/B run does, from the command's arguments (all checked before any training)."""

    def __init__(self, a):
        self.tree = find_tree(a.tree, a.invoked_from)
        self.python = a.python or sys.executable
        self.config = preflight.resolve_config(self.tree, a.config, a.invoked_from)
        here = lambda p: os.path.abspath(os.path.join(a.invoked_from, p))  # noqa: E731
        if not a.checkpoint:
            raise KitError("no CHECKPOINT given; pass CHECKPOINT=output/<model>/best_accuracy (both arms start from it)")
        self.checkpoint = kit_export.config.checkpoint_prefix(here(a.checkpoint))
        dropins.check_weights(self.checkpoint)
        self.centers = preflight.centers_path(a.centers, a.invoked_from)
        self.weights = center_arms(a.center_weight)
        self.runs = _count(a.runs, "RUNS", DEFAULT_RUNS)
        self.epochs = _count(a.epochs, "EPOCHS", None)
        self.model, self.opts, self.nproc, self.engine = a.model, preflight.split_opts(a.opts), a.nproc, a.engine
        name = os.path.splitext(os.path.basename(self.config))[0]
        self.output = here(a.output or "ab-%s" % name)
        preflight.output_folder(self.output)
        if os.path.exists(self.output) and not os.path.isfile(os.path.join(self.output, "ab.json")) and os.listdir(self.output):
            raise KitError("OUTPUT=%s exists and is not a make ab folder (no ab.json); choose another OUTPUT=" % self.output)

    @property
    def arms(self):
        return [CONTROL, *self.weights]

    def run_dir(self, arm, seed):
        return os.path.join(self.output, "%s-seed%d" % (arm, seed))

    def confusions(self, checkpoint, folder, label):
        out = os.path.join(folder, "confusions.json")
        if os.path.isfile(out):
            return out
        cmd = make_command("confusions", self.tree, self.python, CONFIG=self.config, CHECKPOINT=checkpoint, MODEL=self.model,
                    DATA="eval", ENGINE=self.engine, NPROC=self.nproc, OUTPUT=out, FORCE="1",
                    OPTS=opts_text(self.opts))
        print("%s: make confusions (log: %s)" % (label, os.path.join(folder, "confusions.log")), flush=True)
        _run_logged(cmd, os.path.join(folder, "confusions.log"), label + ": make confusions")
        return out

    def train(self, arm, seed, label):
        folder = self.run_dir(arm, seed)
        model_dir = os.path.join(folder, "model")
        shutil.rmtree(model_dir, ignore_errors=True)  # an unfinished run is redone from the start
        os.makedirs(folder, exist_ok=True)
        opts = self.opts + ["Global.seed=%d" % seed, "Global.save_model_dir=%s" % json.dumps(model_dir)]
        if self.epochs:
            opts.append("Global.epoch_num=%d" % self.epochs)
        weight = self.weights.get(arm, "0")
        cmd = make_command("train", self.tree, self.python, CONFIG=self.config, CENTERS=self.centers, CHECKPOINT=self.checkpoint,
                    MODEL=self.model, CENTER_WEIGHT=weight, NPROC=self.nproc, OPTS=opts_text(opts))
        _run_logged(cmd, os.path.join(folder, "train.log"), label, progress_log=os.path.join(model_dir, "train.log"))
        return os.path.join(model_dir, "latest")


def center_arms(text):
    """{arm name: weight} of CENTER_WEIGHT= (one weight, or a comma list), each > 0: `center`
    for one weight, `center-<weight>` each for several; {"center": ""} (the derived config's)."""
    given = [w.strip() for w in str(text or "").split(",") if w.strip()]
    for w in given:
        if train_cmd.center_weight(w) == 0:  # make train's own check first
            raise KitError("CENTER_WEIGHT=%s: 0 is the control arm, run anyway; pass the center arms' weights, "
                           "e.g. CENTER_WEIGHT=0.05 or 0.01,0.05" % text)
    if len(set(given)) != len(given):
        raise KitError("CENTER_WEIGHT=%s names a weight twice; pass each once" % text)
    if len(given) <= 1:
        return {"center": given[0] if given else ""}
    return {"center-%s" % w: w for w in given}


def cmd_ab(a):
    interrupt_on_term()
    plan = Plan(a)
    os.makedirs(plan.output, exist_ok=True)
    baseline_dir = os.path.join(plan.output, "baseline")
    os.makedirs(baseline_dir, exist_ok=True)
    baseline = plan.confusions(plan.checkpoint, baseline_dir, "baseline")
    runs = {arm: [] for arm in plan.arms}
    todo = [(seed, arm) for seed in range(1, plan.runs + 1) for arm in plan.arms]
    for i, (seed, arm) in enumerate(todo, 1):
        folder = plan.run_dir(arm, seed)
        label = "ab %s seed %d (run %d of %d)" % (arm, seed, i, len(todo))
        done = os.path.join(folder, "confusions.json")
        checkpoint = os.path.join(folder, "model", "latest")
        if os.path.isfile(done):
            print("%s: finished earlier, kept (%s)" % (label, done), flush=True)
        else:
            print("%s: make train%s (log: %s)" % (label, " with CENTER_WEIGHT=0" if arm == CONTROL else "",
                                                  os.path.join(folder, "train.log")), flush=True)
            checkpoint = plan.train(arm, seed, label)
            plan.confusions(checkpoint, folder, label)
        runs[arm].append({"seed": seed, "checkpoint": checkpoint, "confusions": done})
    result = summarize(runs, baseline, TOP_PAIRS)
    result["kit_version"] = VERSION
    result["settings"] = dict(config=plan.config, checkpoint=plan.checkpoint, centers=plan.centers,
                              center_weights={arm: w or "the derived config's" for arm, w in plan.weights.items()},
                              epochs=plan.epochs or "the config's",
                              runs=plan.runs, model=plan.model or None, opts=plan.opts)
    path = os.path.join(plan.output, "ab.json")
    files.write_atomic(path, (json.dumps(result, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    print(format_table(result))
    print("wrote %s" % path)
    return 0


def _load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _mean_sd(values):
    values = np.asarray(values, np.float64)
    return {"mean": float(values.mean()), "sd": float(values.std(ddof=1)) if len(values) > 1 else None}


def summarize(runs, baseline_path, top):
    """ab.json's content: per arm its runs and their mean / sd, the baseline and its top
    pairs counted in every run, and per center arm its comparison with the control: per
    seed (center minus control, and a paired t-test over the seeds), and pooled over the
    runs, McNemar's exact test on the (line, seed) pairs (Holm-adjusted over the center
    arms), the smallest change it could have detected, the CER change's bootstrap interval."""
    from . import confusions

    base = _load(baseline_path)
    loaded = {arm: [_load(r["confusions"]) for r in runs[arm]] for arm in runs}
    for arm in runs:
        for r, c in zip(runs[arm], loaded[arm]):
            wrong = confusions.same_lines(base, c["label_files"])
            if wrong:
                raise KitError("%s: %s" % (r["confusions"], wrong))
            r.update(line_accuracy=c["line_accuracy"], char_error_rate=c["char_error_rate"])
    arms = {arm: {"runs": runs[arm], "line_accuracy": _mean_sd([r["line_accuracy"] for r in runs[arm]]),
                  "char_error_rate": _mean_sd([r["char_error_rate"] for r in runs[arm]])} for arm in runs}
    pair_counts = lambda c: {(q["label_char"], q["predicted_char"]): q["count"] for q in c["pairs"]}  # noqa: E731
    counted = {arm: [pair_counts(c) for c in loaded[arm]] for arm in runs}
    top_pairs = [dict(label_char=q["label_char"], predicted_char=q["predicted_char"], label_index=q.get("label_index"),
                      predicted_index=q.get("predicted_index"), baseline=q["count"],
                      **{arm: [c.get((q["label_char"], q["predicted_char"]), 0) for c in counted[arm]] for arm in runs})
                 for q in base["pairs"][:top]]
    return dict(arms=arms, baseline=dict(confusions=baseline_path, line_accuracy=base["line_accuracy"],
                                         char_error_rate=base["char_error_rate"], lines=base["lines"], top_pairs=top_pairs),
                comparisons=compare_all(loaded))


def compare_all(loaded):
    """{center arm: its comparison with the control}, the verdicts corrected for the number
    of center arms: McNemar's p by Holm, the CER interval by Bonferroni (each at 1 - 5%/m),
    so that neither measure declares a change the other's correction would not."""
    from . import paired_stats

    centers = [arm for arm in loaded if arm != CONTROL]
    confidence = 1 - paired_stats.ALPHA / len(centers)
    out = {arm: compare_arms(loaded[CONTROL], loaded[arm], confidence) for arm in centers}
    adjusted = paired_stats.holm([out[arm]["pooled"]["mcnemar"]["p_value"] for arm in centers])
    for arm, p in zip(centers, adjusted):
        c = out[arm]
        c["pooled"]["mcnemar"]["p_holm"] = p
        c["verdict"] = paired_stats.verdict(c["per_seed"]["line_accuracy"]["mean"], p, c["pooled"]["cer_change"]["low"],
                                            c["pooled"]["cer_change"]["high"])
    return out


def compare_arms(control, center, confidence):
    """a center arm against the control: per seed, and pooled over the runs on the same lines
    (the CER change's interval at `confidence`)."""
    from scipy.stats import ttest_rel

    from . import paired_stats

    per_seed = {}
    for key in ("line_accuracy", "char_error_rate"):
        a = np.array([c[key] for c in control])
        b = np.array([c[key] for c in center])
        p = float(ttest_rel(b, a).pvalue) if len(a) > 1 and np.any(b - a != b[0] - a[0]) else None
        per_seed[key] = dict(_mean_sd(b - a), paired_t_p=p)
    stacked = lambda runs, key: np.concatenate([r["per_line"][key] for r in runs])  # noqa: E731
    lost, gained, p = paired_stats.mcnemar_exact(stacked(control, "correct"), stacked(center, "correct"))
    change, low, high = paired_stats.cer_change_interval(stacked(control, "edits"), stacked(center, "edits"),
                                                         stacked(center, "label_chars"), confidence=confidence)
    pairs = int(len(stacked(center, "correct")))
    return dict(per_seed=per_seed,
                pooled=dict(pairs_of_lines=pairs,
                            mcnemar=dict(lines_lost=lost, lines_gained=gained, p_value=p),
                            detectable_change=paired_stats.detectable_change(pairs, lost + gained),
                            cer_change=dict(change=change, low=low, high=high, confidence=confidence)))


def _pm(stat, digits=4):
    return "%.*f" % (digits, stat["mean"]) + (" +- %.*f" % (digits, stat["sd"]) if stat["sd"] is not None else "")


def format_table(result):
    from . import confusions

    arms, base, comps = result["arms"], result["baseline"], result["comparisons"]
    n = len(arms[CONTROL]["runs"])
    out = ["", "A/B: %d run(s) per arm, the same checkpoint, data, epochs and seeds; %d Eval lines" % (n, base["lines"]),
           "%-14s %-22s %-22s" % ("", "line accuracy", "CER"),
           "%-14s %-22s %-22s" % ("baseline", "%.4f" % base["line_accuracy"], "%.4f" % base["char_error_rate"])]
    for arm in arms:
        out.append("%-14s %-22s %-22s" % (arm, _pm(arms[arm]["line_accuracy"]), _pm(arms[arm]["char_error_rate"])))
    if base["top_pairs"]:
        out += ["", "the baseline's top pairs, count per run (%s)" % " | ".join(arms)]
        for q in base["top_pairs"]:
            out.append("  %-12s baseline %4d   %s" % (
                "%s -> %s" % (confusions.shown(q["label_char"]), confusions.shown(q["predicted_char"])), q["baseline"],
                "   ".join("%s %s" % (arm, " ".join(map(str, q[arm]))) for arm in arms)))
    p_text = lambda p: "n/a" if p is None else "%.4g" % p  # noqa: E731
    for arm, comp in comps.items():
        seed, pooled = comp["per_seed"], comp["pooled"]
        mcnemar, mde = pooled["mcnemar"], pooled["detectable_change"]
        out += ["", "%s - control, per seed: line accuracy %s (paired t p = %s), CER %s (p = %s)" % (
                    arm, _pm(seed["line_accuracy"]), p_text(seed["line_accuracy"]["paired_t_p"]),
                    _pm(seed["char_error_rate"]), p_text(seed["char_error_rate"]["paired_t_p"])),
                "  pooled over %d (line, seed) pairs: %d right only in control, %d only with CenterLoss, McNemar exact "
                "p = %.4g%s; CER change %+.4f (%s%% bootstrap%s %+.4f .. %+.4f)" % (
                    pooled["pairs_of_lines"], mcnemar["lines_lost"], mcnemar["lines_gained"], mcnemar["p_value"],
                    " (Holm, %d comparisons: %.4g)" % (len(comps), mcnemar["p_holm"]) if len(comps) > 1 else "",
                    pooled["cer_change"]["change"], "%g" % (100 * pooled["cer_change"]["confidence"]),
                    ", Bonferroni for %d comparisons" % len(comps) if len(comps) > 1 else "",
                    pooled["cer_change"]["low"], pooled["cer_change"]["high"]),
                "  smallest line accuracy change this run could detect (5%%, 80%% power, its discordance): %s" % (
                    "+-%.4f" % mde if mde is not None else "n/a (no line changed)"),
                "  verdict: CenterLoss%s %s" % ("" if len(comps) == 1 else " (%s)" % arm, comp["verdict"])]
    return "\n".join(out)
