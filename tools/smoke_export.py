"""`make smoke`: proves the kit on this clone in seconds, for CI jobs pinning a tag.

The kit's tiny Teacher/Student MultiHead config (configs/tiny_distill_ctc_nrtr.yml), a
stand-in checkpoint (centerkit.standin: fresh weights, the CTC heads read "1" everywhere),
eleven generated images of which the odd ones are labelled "2" (not recognised), and a real
`make export` into a temporary folder. Passes when the pkl is in CenterLoss's format, holds
exactly class "1" with the Student's feature width, and the clone is byte-for-byte as before
(the export itself proves that). Run by the Makefile, which puts the kit's scripts/ on
PYTHONPATH."""

import json
import os
import subprocess
import sys
import tempfile

from centerkit import KIT_ROOT, KitError, files, github, pkl_format, run_tool
from centerkit.make_commands import make_export_command
from centerkit.standin import make_standin, noise_images
from centerkit.tree import find_tree, tool_arguments

CONFIG = os.path.join(KIT_ROOT, "configs", "tiny_distill_ctc_nrtr.yml")


def smoke(argv):
    a = tool_arguments(__doc__).parse_args(argv)
    tree = find_tree(a.tree, a.invoked_from)
    with tempfile.TemporaryDirectory(prefix="ppocr-center-kit-smoke-") as work:
        with open(os.path.join(work, "dict.txt"), "w") as f:
            f.write("".join(c + "\n" for c in "0123456789"))
        opts = noise_images(work, "12" * 5 + "1", (32, 64)) + ["Global.character_dict_path=%s/dict.txt" % work]
        cwd = os.getcwd()
        os.chdir(tree)  # the stand-in is built by this tree's own ppocr
        try:
            made = make_standin(CONFIG, os.path.join(work, "ckpt"), "1", opts)
        finally:
            os.chdir(cwd)
        out = os.path.join(work, "train_center.pkl")
        cmd = make_export_command(tree, sys.executable, CONFIG, os.path.join(work, "ckpt"), out, opts)
        if subprocess.call(cmd, stdout=subprocess.DEVNULL):
            raise KitError("make export failed on the smoke test (its error is above); `make status` shows the tree")
        got, width, _ = pkl_format.load(out)
        with open(files.report_path(out)) as f:
            report = json.load(f)
    want = (made["class_index"],), made["widths"]["Student"], (11, 6)
    if (tuple(got), width, (report["images_seen"], report["images_used"])) != want:
        raise KitError("smoke export wrote classes %s of width %s from %s images, expected %s; please report it"
                       % (sorted(got), width, (report["images_seen"], report["images_used"]), want))
    print("ok: smoke export on %s (release %s): %d center of width %d, clone unchanged"
          % (tree, report.get("release"), len(got), width))
    github.publish("smoke", github.made_on(report["release"], report["series"], report["series_sha256"]),
                   [("result", "1 center of width %d, clone unchanged" % width)])
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(smoke, sys.argv[1:]))
