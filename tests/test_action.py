"""Issue 31: the GitHub Action (action.yml) run the way a runner runs a composite action:
its inputs resolved against their declared defaults (an undeclared one fails, as the runner
warns), `${{ inputs.* }}` substituted into each step's env, working directory and script,
each `run:` step run by `bash --noprofile --norc -eo pipefail`, with GITHUB_ACTIONS=true and
the step's GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files; the action's outputs evaluated from
the step's. On a release tree from the bundle: check, smoke and confusions give their outputs
and summary, a bad input fails the step with one annotation that is the kit's one line, and
the tree is left clean. The example workflow uses only declared inputs, this kit's version
and releases of the table with the Paddle the tests run them on."""

import os
import re
import shlex
import subprocess

import pytest
import yaml

import release_envs
import tiny_data
from centerkit import VERSION, github, patchfile
from centerkit.dropins import kit_export
from centerkit.make_commands import opts_text
from conftest import NEWEST, TABLE
from kit_run import KIT, git_status, hermetic_env
from test_confusions import CONFIG, LABELS, Confusions, expected_counts

with open(os.path.join(KIT, "action.yml"), encoding="utf-8") as _f:
    ACTION = yaml.safe_load(_f)
EXAMPLE = os.path.join(KIT, "examples", "github-actions-centers.yml")
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
ANNOTATION = "::error title=ppocr-center-kit::"


def substitute(text, context):
    """${{ name }} replaced as the runner does for the names this runner knows; a step
    output not set is empty (as on GitHub); anything else fails the test."""
    def value(m):
        name = m.group(1)
        if name in context:
            return context[name]
        assert name.startswith("steps."), "the local runner cannot evaluate ${{ %s }}" % name
        return ""
    return EXPRESSION.sub(value, str(text))


def read_outputs(path):
    """name=value lines of a GITHUB_OUTPUT file (the kit writes one-line values)."""
    with open(path, encoding="utf-8") as f:
        return dict(line.split("=", 1) for line in f.read().splitlines() if line)


class Run:
    def __init__(self, result, outputs, step_outputs, summary):
        self.result, self.outputs, self.step_outputs, self.summary = result, outputs, step_outputs, summary

    def annotations(self):
        return [l[len(ANNOTATION):] for l in self.result.stdout.splitlines() if l.startswith(ANNOTATION)]

    def why(self):
        return self.result.stdout[-3000:] + self.result.stderr[-3000:]


def run_action(workspace, **inputs):
    """The action's steps on a runner in workspace, with inputs given by input name (with -)."""
    declared = ACTION["inputs"]
    unknown = set(inputs) - set(declared)
    assert not unknown, "inputs %s are not declared in action.yml" % sorted(unknown)
    context = {"inputs.%s" % name: str(inputs.get(name, spec.get("default", ""))) for name, spec in declared.items()}
    context["github.action_path"] = KIT
    output, summary = workspace / "github_output", workspace / "step_summary"
    output.write_text("")
    env = hermetic_env({"GITHUB_ACTIONS": "true", "GITHUB_ACTION_PATH": KIT, "GITHUB_WORKSPACE": str(workspace),
                        "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)})
    step_outputs = {}
    for i, step in enumerate(ACTION["runs"]["steps"]):
        assert step.get("shell") == "bash" and "run" in step, "a composite step the local runner does not know: %s" % step
        script = workspace / ("step%d.sh" % i)
        script.write_text(substitute(step["run"], context))
        step_env = dict(env, **{k: substitute(v, context) for k, v in (step.get("env") or {}).items()})
        cwd = os.path.join(str(workspace), substitute(step.get("working-directory", "."), context))
        r = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=cwd, env=step_env,
                           capture_output=True, text=True)
        step_outputs = read_outputs(output)
        context.update({"steps.%s.outputs.%s" % (step.get("id"), k): v for k, v in step_outputs.items()})
        if r.returncode:
            break
    outputs = {name: substitute(spec["value"], context) for name, spec in ACTION["outputs"].items()}
    return Run(r, outputs, step_outputs, summary.read_text() if summary.exists() else "")


def made_on(release):
    series = next(r.series for r in TABLE if r.name == release)
    return dict(release=release, series=series, **{"series-sha256": patchfile.series_digest(series)})


def test_check_gives_the_release_and_series(tree_of, tmp_path):
    tree = tree_of(NEWEST)
    run = run_action(tmp_path, **{"paddleocr-path": tree, "command": "check", "python": tiny_data.release_python(tree, NEWEST),
                                  "paddleocr-version": NEWEST})  # install: default, the kit's requirements are there
    assert run.result.returncode == 0, run.why()
    assert "ok: PaddleOCR %s" % NEWEST in run.result.stdout and run.annotations() == []
    want = made_on(NEWEST)
    assert {k: run.outputs[k] for k in want} == want and run.outputs["path"] == ""
    assert "make check" in run.summary and "| release | %s |" % NEWEST in run.summary
    assert "| series-sha256 | %s |" % want["series-sha256"] in run.summary
    assert git_status(tree) == ""


def test_smoke_gives_its_own_outputs_not_its_inner_exports(tree_of, tmp_path):
    tree = tree_of(NEWEST)
    run = run_action(tmp_path, **{"paddleocr-path": tree, "command": "smoke", "install": "false",
                                  "python": tiny_data.release_python(tree, NEWEST)})
    assert run.result.returncode == 0, run.why()
    assert "ok: smoke export" in run.result.stdout
    # the inner make export writes to a temp folder: its path is not the step's output
    assert run.step_outputs == made_on(NEWEST) and run.outputs["path"] == ""
    assert run.summary.count("### ppocr-center-kit") == 1 and "make smoke" in run.summary
    assert git_status(tree) == ""


def test_confusions_gives_line_accuracy_and_cer(tree_of, tmp_path):
    run = Confusions(tree_of(NEWEST), NEWEST, tmp_path)
    run.standin()
    out = tmp_path / "c.json"
    got = run_action(tmp_path, **{"paddleocr-path": run.tree, "command": "confusions", "install": "false",
                                  "python": run.python, "config": CONFIG,
                                  "checkpoint": run.ckpt, "output": str(out), "opts": opts_text(run.opts)})
    assert got.result.returncode == 0, got.why()
    subs, dels, correct_lines, chars = expected_counts(LABELS)
    assert got.outputs["path"] == str(out) and out.exists()
    assert got.outputs["line-accuracy"] == "%.4f" % (correct_lines / (len(LABELS) + 1e-5))
    assert got.outputs["cer"] == "%.4f" % ((sum(subs.values()) + sum(dels.values())) / chars)
    assert got.outputs["release"] == NEWEST and "| line-accuracy |" in got.summary
    assert run.clean()


@pytest.mark.parametrize("inputs, message", [
    ({"command": "export", "config": "configs/rec/no-such-config.yml"}, "no-such-config.yml"),
    ({"command": "revert"}, "command: 'revert' is not one of check, smoke, export, confusions"),
])
def test_bad_input_fails_with_one_annotation_the_kits_line(tree_of, tmp_path, inputs, message):
    tree = tree_of(NEWEST)
    run = run_action(tmp_path, **{"paddleocr-path": tree, "install": "false", "python": tiny_data.release_python(tree, NEWEST),
                                  **inputs})
    assert run.result.returncode == 2, run.why()
    lines = [l for l in run.result.stderr.splitlines() if l.startswith("ppocr-center-kit: error: ")]
    assert len(lines) == 1 and message in lines[0], run.why()
    assert run.annotations() == [lines[0][len("ppocr-center-kit: error: "):]]
    assert run.step_outputs == {} and run.outputs["path"] == ""
    assert git_status(tree) == ""


@pytest.mark.parametrize("message", ["plain", "50% of\nthe lines\r"])
def test_the_export_child_annotates_as_the_kit_does(message, monkeypatch, capsys):
    """The export script (run in the clone, where it cannot import the kit) prints its
    errors as centerkit.print_error does, annotation and escaping included."""
    import centerkit

    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    kit_export.errors.print_error(message)
    child = capsys.readouterr()
    centerkit.print_error(message)
    kit = capsys.readouterr()
    assert (child.out, child.err) == (kit.out, kit.err)
    assert kit.out == github.annotation(message) + "\n" and kit.out.count("\n") == 1
    monkeypatch.setenv("GITHUB_ACTIONS", "false")
    kit_export.errors.print_error(message)
    assert capsys.readouterr().out == ""


def example_workflow():
    with open(EXAMPLE, encoding="utf-8") as f:
        text = f.read()
    return text, yaml.safe_load(text)


def test_example_uses_only_declared_inputs_and_outputs():
    text, workflow = example_workflow()
    uses = [s for job in workflow["jobs"].values() for s in job["steps"] if "ppocr-center-kit@" in s.get("uses", "")]
    assert len(uses) >= 2
    for step in uses:
        assert step["uses"].endswith("@v" + VERSION), "the example pins another version: %s" % step["uses"]
        unknown = set(step.get("with", {})) - set(ACTION["inputs"])
        assert not unknown, "the example passes inputs action.yml does not declare: %s" % sorted(unknown)
    named = set(re.findall(r"steps\.[\w-]+\.outputs\.([\w-]+)", text))  # the commented steps' too
    assert named and named <= set(ACTION["outputs"])


def test_example_matrix_names_releases_of_the_table_with_their_paddle():
    _, workflow = example_workflow()
    rows = workflow["jobs"]["centers"]["strategy"]["matrix"]["include"]
    table = {r.name for r in TABLE}
    assert len({r["paddleocr"] for r in rows}) >= 2 and {r["paddleocr"] for r in rows} <= table
    for row in rows:
        pins = release_envs.env_for(row["paddleocr"]).pins
        assert "paddlepaddle==%s" % row["paddle"] in pins
        assert set(shlex.split(row["pins"])) == set(pins) - {"paddlepaddle==%s" % row["paddle"]}
