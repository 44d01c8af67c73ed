"""Clone tier (the newest release): every line of every Train label file is read exactly once and in
order, whatever `ratio_list` says, on one process or several, and the report says how
many lines of each label file were read. A sample the dataset cannot load is a one-line
error naming it, not upstream's silent substitute (the next image, read twice)."""

import os
import re
import shutil

import numpy as np
import pytest

import tiny_data
from conftest import NEWEST
import kit_run
from kit_run import error_lines, git_status, recipe_exit

RELEASE = NEWEST
CONFIG = "tiny_plain_ctc.yml"


@pytest.fixture
def run_setup(tree_of, tmp_path):
    """(tree, python, ckpt, data folder, opts without the label files): 11 images, split
    into a.txt (7 lines) and b.txt (4 lines), and a checkpoint that reads half of them."""
    tree = tree_of(RELEASE)
    python, data, opts, ckpt = tiny_data.initialised(tree, RELEASE, CONFIG, tmp_path)
    lines = (data / "train.txt").read_text().splitlines(True)
    (data / "a.txt").write_text("".join(lines[:7]))
    (data / "b.txt").write_text("".join(lines[7:]))
    return tree, python, ckpt, data, opts[:2]


def export(tree, python, ckpt, out, opts, **variables):
    # both engines take their images from the same loader
    return kit_run.export(tree, RELEASE, out, opts, PYTHON=python, CONFIG=tiny_data.config_path(CONFIG),
                          CHECKPOINT=ckpt, **kit_run.ENGINE_NOT_UNDER_TEST, **variables)[0]


read = kit_run.load_export


def test_ratio_list_is_ignored_on_one_and_two_processes(run_setup, tmp_path):
    tree, python, ckpt, data, opts = run_setup
    before = git_status(tree)
    r = export(tree, python, ckpt, tmp_path / "all.pkl", opts + ["Train.dataset.label_file_list=[%s]" % (data / "train.txt")])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    expected, report = read(tmp_path / "all.pkl")
    assert report["lines_read_per_label_file"] == {str(data / "train.txt"): 11}
    split = opts + ["Train.dataset.label_file_list=[%s,%s]" % (data / "a.txt", data / "b.txt"),
                    "Train.dataset.ratio_list=[0.5,0.3]", "Eval.dataset.ratio_list=[0.1]"]
    for nproc in (1, 2):
        out = tmp_path / ("split%d.pkl" % nproc)
        r = export(tree, python, ckpt, out, split, NPROC=nproc)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        centers, report = read(out)
        assert report["lines_read_per_label_file"] == {str(data / "a.txt"): 7, str(data / "b.txt"): 4}
        assert re.search(r"lines read per label file +a\.txt: 7, b\.txt: 4\n", r.stdout)
        assert report["images_seen"] == 11 and sorted(centers) == sorted(expected)
        for c in expected:
            np.testing.assert_allclose(centers[c], expected[c], rtol=1e-6, atol=1e-6)
    assert git_status(tree) == before


@pytest.mark.parametrize("problem", ["broken image", "broken image, 2 loader workers", "missing image"])
def test_an_unreadable_image_is_one_line_naming_it(run_setup, tmp_path, problem):
    """A broken image exists, so the preflight passes it; a missing image on a line the
    preflight's bounded sample does not read is found by the export. Upstream would log and
    read the next image in its place; the kit stops, naming the line, and writes nothing."""
    from centerkit import preflight

    tree, python, ckpt, data, opts = run_setup
    labels = data / "train.txt"
    if problem.startswith("broken image"):
        (data / "img" / "3.png").write_bytes(b"not a png")
        image, number = "img/3.png", 4
    else:  # 80 lines, one of them out of the preflight's sample naming a missing image
        first = labels.read_text().splitlines(True)
        lines = []
        for i in range(80):  # img/i.png, a copy of img/(i % 11).png, with its label
            if i >= 11:
                shutil.copy(str(data / "img" / ("%d.png" % (i % 11))), str(data / "img" / ("%d.png" % i)))
            lines.append("img/%d.png\t%s" % (i, first[i % 11].split("\t", 1)[1]))
        labels.write_text("".join(lines))
        sampled = {l for _, l in preflight.sample_lines(str(labels))}
        number = next(n for n in range(40, 80) if lines[n - 1].encode() not in sampled)
        image = "img/missing.png"
        lines[number - 1] = image + "\t" + lines[number - 1].split("\t", 1)[1]
        labels.write_text("".join(lines))
        assert all(image.encode() not in l for _, l in preflight.sample_lines(str(labels)))
    out = tmp_path / "out" / "centers.pkl"
    out.parent.mkdir()
    workers = ["Eval.loader.num_workers=2"] if "workers" in problem else []  # the error comes from a worker process
    r = export(tree, python, ckpt, out, opts + workers + ["Train.dataset.label_file_list=[%s]" % labels])
    assert recipe_exit(r) == 2, r.stdout[-2000:] + r.stderr[-2000:]
    lines = error_lines(r)
    assert len(lines) == 1 and "image %s, line %d of %s" % (image, number, labels) in lines[0], r.stderr[-3000:]
    assert os.listdir(out.parent) == []
    assert git_status(tree) == ""
