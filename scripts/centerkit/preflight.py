"""Checks before anything in the tree is touched: is the config a rec model with a CTC
head, do the checkpoint, dictionary, label files and images exist."""

import json
import os
import re
import shlex
import subprocess

from . import KitError, dropins, export_errors
from .dropins import kit_export


# What the export and training children import beyond the kit's modules: Paddle, and the
# modules of ppocr's rec training path, by the name the clone's requirements.txt lists them
# under (each release lists what it uses). Not every line of that file: some (PyMuPDF, for
# ppstructure's PDFs; visualdl, opt-in) are never imported by rec export or training.
CLONE_MODULES = {
    "shapely": "shapely", "scikit-image": "skimage", "imgaug": "imgaug", "pyclipper": "pyclipper", "lmdb": "lmdb",
    "tqdm": "tqdm", "numpy": "numpy", "rapidfuzz": "rapidfuzz", "opencv-python": "cv2", "opencv-contrib-python": "cv2",
    "cython": "Cython", "pillow": "PIL", "pyyaml": "yaml", "requests": "requests", "albumentations": "albumentations",
    "albucore": "albucore",
}
_FIND = "import importlib.util as u, json, sys; print(json.dumps([m for m in sys.argv[1:] if u.find_spec(m) is None]))"
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_.\-]+)")


def clone_requirements(tree):
    """{requirement name: module} of the clone's requirements.txt that rec training imports."""
    path = os.path.join(tree, "requirements.txt")
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8", errors="replace") as f:
        names = [m.group(1).lower() for m in map(_REQUIREMENT.match, f) if m]
    return {n: CLONE_MODULES[n] for n in names if n in CLONE_MODULES}


def check_python(tree, python):
    """KitError naming the pip command when `python` (PYTHON=, which runs the export or the
    training in the clone) lacks Paddle or a module of the clone's requirements: found
    before the series is applied, not as a traceback after. find_spec imports nothing."""
    needed = dict(paddlepaddle="paddle", **clone_requirements(tree))
    try:
        r = subprocess.run([python, "-c", _FIND, *sorted(set(needed.values()))], cwd=tree, capture_output=True, text=True)
    except OSError as e:
        raise KitError("PYTHON=%s cannot be run (%s); pass PYTHON=<the Python with Paddle>" % (python, e.strerror or e))
    if r.returncode:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        raise KitError("PYTHON=%s does not run (%s); pass PYTHON=<the Python with Paddle>" % (python, last))
    missing = set(json.loads(r.stdout.strip().splitlines()[-1]))
    if "paddle" in missing:
        raise KitError('PYTHON=%s has no Paddle; run "%s" -m pip install paddlepaddle (paddlepaddle-gpu for CUDA), '
                       "or pass PYTHON=<the Python with Paddle>" % (python, python))
    lacking = sorted(n for n, m in needed.items() if m in missing)
    if lacking:
        raise KitError('PYTHON=%s lacks %s of PaddleOCR\'s requirements; run "%s" -m pip install -r %s'
                       % (python, ", ".join(lacking), python, os.path.join(tree, "requirements.txt")))


def centers_path(centers, invoked_from):
    """CENTERS= as an absolute path (relative to where make ran) to a pkl in CenterLoss's
    format, or KitError naming the fix: the one rule of what CENTERS must be (the format's
    checks are pkl_format's), before any long step."""
    from . import pkl_format

    if not centers:
        raise KitError("no CENTERS given; pass CENTERS=train_center.pkl (written by make export)")
    path = os.path.abspath(os.path.join(invoked_from, centers))
    pkl_format.load(path)
    return path


def output_folder(output):
    """KitError when the folder an OUTPUT= goes into does not exist (the run would fail at
    its end, after the work)."""
    if not os.path.isdir(os.path.dirname(os.path.abspath(output))):
        raise KitError("the folder of OUTPUT=%s does not exist; create it or choose another OUTPUT=" % output)


def _in_tree(tree, path):
    return path if os.path.isabs(path) else os.path.join(tree, path)


def split_opts(text):
    """OPTS='-o K=v ...' (or without the -o) as the list of K=v items, split as a shell does."""
    try:
        return [o for o in shlex.split(text or "") if o not in ("-o", "--opt")]
    except ValueError as e:
        raise KitError("OPTS=%s cannot be split (%s); quote it as in a shell" % (text, e))


def resolve_config(tree, config, invoked_from):
    """CONFIG as given, relative to where make was run, else to the tree."""
    if not config:
        raise KitError("no CONFIG given; pass CONFIG=configs/rec/<model>.yml")
    for base in (invoked_from, tree):
        path = os.path.join(base, config)
        if os.path.isfile(path):
            return os.path.abspath(path)
    where = " and ".join(sorted({os.path.abspath(invoked_from), tree}))
    raise KitError("config %s does not exist (looked in %s); pass CONFIG=<existing .yml>" % (config, where))


def check(tree, config_path, opts, data_section="Train"):
    """The derived config, or KitError naming what to fix; data_section: the config section
    whose data the run reads (`make confusions` DATA=eval reads Eval's)."""
    with export_errors():
        config = kit_export.config.load_config(config_path, kit_export.config.parse_opts(opts))
        kit_export.config.check_rec_ctc_config(config)
    weights = kit_export.config.weights_source(config)
    if weights is None:
        raise KitError("the config names no checkpoint; pass CHECKPOINT=output/<model>/best_accuracy")
    dropins.check_weights(_in_tree(tree, weights.path), weights.source)
    g = config["Global"]
    dict_path = g.get("character_dict_path")
    if dict_path and not os.path.isfile(_in_tree(tree, dict_path)):
        raise KitError("dictionary %s does not exist; fix Global.character_dict_path (OPTS='-o Global.character_dict_path=...')" % dict_path)
    check_data(tree, config[data_section]["dataset"], data_section)
    return config


# The preflight reads at most this many lines of a label file, whatever its size: the first
# half and lines at evenly spaced offsets. The export names any other broken line when it
# reaches it (a one-line error, read_each_once in the export script).
SAMPLE_LINES = 64
REMOTE = ("http://", "https://")  # v3.x SimpleDataSet downloads these


def sample_lines(path, count=SAMPLE_LINES):
    """[(where, line)] of up to count lines of a label file: the first count // 2 (where is
    ":N") and count // 2 more at evenly spaced byte offsets (" (near byte B)"), each whole."""
    size = os.path.getsize(path)
    out = []
    with open(path, "rb") as f:
        for number in range(1, count // 2 + 1):
            line = f.readline()
            if not line:
                return out
            out.append((":%d" % number, line))
        start = f.tell()
        for k in range(count - count // 2):
            offset = start + (size - start) * k // (count - count // 2)
            f.seek(max(offset - 1, 0))
            if offset > 0:
                f.readline()  # to the start of the next whole line
            line = f.readline()
            if line:
                out.append((" (near byte %d)" % offset, line))
    return out


def check_data(tree, ds, section="Train"):
    """The data folder, each label file, and a bounded sample of their lines: the cost does
    not grow with the data set. section: whose dataset it is, for the messages."""
    data_dir = _in_tree(tree, ds.get("data_dir") or ".")
    if not os.path.isdir(data_dir):
        raise KitError("%s.dataset.data_dir %s does not exist; fix it in the config or OPTS" % (section, ds.get("data_dir")))
    if ds.get("name") == "LMDBDataSet":
        return
    labels = kit_export.config.label_files(ds)
    if not labels:
        raise KitError("%s.dataset.label_file_list is empty; name its label files" % section)
    delimiter = ds.get("delimiter", "\t")
    for label_file in labels:
        path = _in_tree(tree, label_file)
        if not os.path.isfile(path):
            raise KitError("label file %s does not exist; fix %s.dataset.label_file_list" % (label_file, section))
        sample = [(w, l.decode("utf-8", "replace").rstrip("\r\n")) for w, l in sample_lines(path)]
        if not any(line.strip() for _, line in sample):
            raise KitError("label file %s is empty; it needs `image<TAB>label` lines" % label_file)
        for where, line in sample:
            if not line.strip():
                continue
            image, sep, _ = line.partition(delimiter)
            if not sep:
                raise KitError("%s%s has no %r between image and label; fix the label file" % (label_file, where, delimiter))
            if not image.startswith(("[",) + REMOTE) and not os.path.exists(os.path.join(data_dir, image)):
                raise KitError("%s%s names image %s, missing under %s; fix the path or data_dir" % (label_file, where, image, data_dir))
