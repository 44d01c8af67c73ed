"""Whether the export sizes the heads as a release's own training does: the kit's
set_head_channels (the drop-in export script's) against the `if hasattr(post_process_class,
"character")` block of that release's tools/train.py, run on the same config, for every
configs/rec/**/*.yml of the release. `make add-release` proves a new release with it, and
tests/test_head_channels.py every release of the table."""

import ast
import copy
import glob
import os
import types

import yaml

from .dropins import kit_export

CHARS = 100  # any dictionary size: both sides are functions of it


def train_py_derivation(source, filename="tools/train.py"):
    """upstream's block of train.py's main(), as a function of (config, dictionary size)
    that edits the config in place, as train.py does."""
    main = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == "main")
    block = next(n for n in ast.walk(main) if isinstance(n, ast.If) and "post_process_class" in ast.unparse(n.test))
    code = compile(ast.Module(body=[block], type_ignores=[]), filename, "exec")

    def derive(config, char_num):
        exec(code, {"config": config, "post_process_class": types.SimpleNamespace(character=[""] * char_num)})

    return derive


def compare(train_py_source, configs):
    """(compared, unreadable {path: why}, differing [path]) over configs {path: YAML text}:
    those train.py itself cannot take (invalid YAML, a block that raises) are unreadable,
    with the reason; the others must give the same Architecture and Loss both ways
    (train.py's plain-SAR `Loss.ignore_index` aside: the export builds no loss)."""
    derive = train_py_derivation(train_py_source)
    compared, unreadable, differing = 0, {}, []
    for path, text in sorted(configs.items()):
        try:  # as upstream's tools/program.py reads a config
            config = yaml.load(text, Loader=yaml.Loader)
        except yaml.YAMLError as e:
            unreadable[path] = "not valid YAML: %s" % str(e).splitlines()[0]
            continue
        theirs, ours = copy.deepcopy(config), copy.deepcopy(config)
        try:
            derive(theirs, CHARS)
        except Exception as e:  # noqa: BLE001 - whatever train.py raises is the reason
            unreadable[path] = "train.py raises %s: %s" % (type(e).__name__, e)
            continue
        kit_export.config.set_head_channels(ours, CHARS)
        if isinstance(theirs.get("Loss"), dict):  # back to the config's own, if any
            theirs["Loss"].pop("ignore_index", None)
            if "ignore_index" in (config.get("Loss") or {}):
                theirs["Loss"]["ignore_index"] = config["Loss"]["ignore_index"]
        if (ours["Architecture"], ours.get("Loss")) != (theirs["Architecture"], theirs.get("Loss")):
            differing.append(path)
        compared += 1
    return compared, unreadable, differing


def compare_tree(tree):
    """compare() on a tree's own tools/train.py and configs/rec/**/*.yml."""
    with open(os.path.join(tree, "tools", "train.py"), encoding="utf-8") as f:
        source = f.read()
    configs = {}
    for path in glob.glob(os.path.join(tree, "configs", "rec", "**", "*.yml"), recursive=True):
        with open(path, encoding="utf-8", errors="replace") as f:
            configs[os.path.relpath(path, tree)] = f.read()
    return (len(configs),) + compare(source, configs)
