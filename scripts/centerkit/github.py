"""What the kit tells a GitHub Actions runner, only when it runs under one (GITHUB_ACTIONS=true,
which the runner sets): each error line also as a workflow command, which the run shows as an
annotation; a command's results as the step's outputs ($GITHUB_OUTPUT) and as a table in the
job's summary ($GITHUB_STEP_SUMMARY). action.yml runs the make targets: this is how their
results reach the workflow, with no second implementation of any command.

The export (dropin/ppocr/utils/kit_export/errors.py) prints its errors from inside the clone,
where it cannot import the kit: its `print_error` writes the same annotation (see
annotation()); tests/test_action.py checks that the two agree."""

import os

TITLE = "ppocr-center-kit"


def on_runner():
    return os.environ.get("GITHUB_ACTIONS") == "true"


def annotation(message):
    """The workflow command of an error: escaped the way the runner unescapes a message
    (%, CR, LF), so a message stays one annotation whatever it holds."""
    return "::error title=%s::%s" % (TITLE, message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def _append(variable, text):
    path = os.environ.get(variable)
    if on_runner() and path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(text)


def error(message):
    """On a runner: the annotation (on stdout, where the runner reads workflow commands)
    and the error in the step summary."""
    if on_runner():
        print(annotation(message), flush=True)
        _append("GITHUB_STEP_SUMMARY", "### %s: error\n\n%s\n\n" % (TITLE, message))


def made_on(release, series, digest=None):
    """The outputs every command of the Action has: the release and the series it ran with
    (the sha256 a centers report and a confusions JSON record, see patchfile.series_digest)."""
    from .patchfile import series_digest

    return {"release": release, "series": series, "series-sha256": digest or series_digest(series)}


def publish(command, outputs, more=()):
    """A command's results on a runner: outputs {name: value} as step outputs (action.yml
    declares them), and with more [(what, value)] as a table in the summary under a heading
    naming the command. Values are one line each (paths, figures)."""
    from . import VERSION

    _append("GITHUB_OUTPUT", "".join("%s=%s\n" % (k, str(v).replace("\n", " ")) for k, v in outputs.items()))
    rows = list(outputs.items()) + list(more)
    table = "".join("| %s | %s |\n" % (what, str(value).replace("|", "\\|")) for what, value in rows)
    _append("GITHUB_STEP_SUMMARY", "### %s %s: make %s\n\n| | |\n|---|---|\n%s\n" % (TITLE, VERSION, command, table))
