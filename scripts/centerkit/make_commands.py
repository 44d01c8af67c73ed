"""The `make <target>` command lines a user would type, for the kit's own tools that run
other kit commands (make ab, make add-release, make smoke, make bench, the demo)."""

import os
import shlex

from . import KIT_ROOT, PREFIX, github


def kit_line(output):
    """The kit's own last line in a kit command's output (`ppocr-center-kit: error: ...`: its
    one-line error, without the prefix, for the calling command's own error), else the last
    line; make's own `make: *** [...] Error 2` names no fix."""
    lines = output.strip().splitlines()
    line = ([l for l in lines if l.startswith(PREFIX)] or lines or ["no output"])[-1]
    if line.startswith(PREFIX):
        line = line[len(PREFIX):].strip()
        return line[len("error: "):] if line.startswith("error: ") else line
    return line


def make_command(target, tree, python, **variables):
    """The `make <target>` a user would type, for the kit's own tools (ab, add-release,
    smoke, bench, demo); variables left empty are not passed. On a GitHub runner the inner
    command's outputs and summary are not the step's (smoke's inner export would name a
    deleted temp file): it gets them empty, and still annotates its errors."""
    inner = ["GITHUB_OUTPUT=", "GITHUB_STEP_SUMMARY="] if github.on_runner() else []
    return ["make", "--no-print-directory", "-f", os.path.join(KIT_ROOT, "Makefile"), target, "PADDLEOCR=%s" % tree,
            "PYTHON=%s" % python] + ["%s=%s" % kv for kv in variables.items() if kv[1] not in (None, "")] + inner


def opts_text(opts):
    """-o items as the OPTS= of a make command: each quoted as a shell needs it, since the
    kit shlex-splits OPTS (preflight.split_opts); a path with a space stays one item."""
    return " ".join("-o " + shlex.quote(o) for o in opts)


def make_export_command(tree, python, config, checkpoint, output, opts, **variables):
    return make_command("export", tree, python, CONFIG=config, CHECKPOINT=checkpoint, OUTPUT=output,
                        OPTS=opts_text(opts), **variables)
