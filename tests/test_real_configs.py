"""Clone tier: `make export` on the real upstream configs people train today, unmodified.

For each release in REAL_CONFIG_RELEASES and each model family, the first of the family's
config paths that the release has is exported with the kit. No trained checkpoint of these
(large) models can be downloaded here, so centerkit.standin makes a full (Teacher and
Student) checkpoint with fresh weights, each CTC head's last FC layer set so that every time
step reads "1". Images
labelled "1" are then recognised and the others are not, which exercises everything the
export does (config derivation, head channels, the Eval pipeline over the Train data, the
sub-model forward, the features) on the real architecture; the center width must be the
input width of that last FC layer (`mid_channels` when set). Each is exported twice: with the
default engine, which must be the inference engine (the model converts), and with
ENGINE=dygraph, whose centers it must equal.
"""

import json
import os
import subprocess

import numpy as np
import pytest
import yaml

from conftest import NEWEST, YAML_BROKEN, YAML_FIXED
from kit_run import export, git_status, helper_env, output_of
import tiny_data

REAL_CONFIG_RELEASES = [YAML_BROKEN, YAML_FIXED, NEWEST]
FAMILIES = {  # the configs were renamed in v3.0: newest name first
    "svtrv2-distillation": ["configs/rec/SVTRv2/ch_SVTRv2_rec_distillation.yml",
                            "configs/rec/SVTRv2/rec_svtrv2_ch_distillation.yml"],
    "ppocrv4-distillation": ["configs/rec/PP-OCRv4/PP-OCRv4_mobile_rec_distillation.yml",
                             "configs/rec/PP-OCRv4/ch_PP-OCRv4_rec_distillation.yml"],
    "ppocrv4-multihead": ["configs/rec/PP-OCRv4/PP-OCRv4_mobile_rec.yml",
                          "configs/rec/PP-OCRv4/ch_PP-OCRv4_rec.yml"],
    "ppocrv5-multihead": ["configs/rec/PP-OCRv5/PP-OCRv5_mobile_rec.yml"],
    "ppocrv6": ["configs/rec/PP-OCRv6/PP-OCRv6_tiny_rec.yml"],
    "plain-ctc-crnn": ["configs/rec/rec_mv3_none_bilstm_ctc.yml"],
}
EXTRA_OPTS = {"plain-ctc-crnn": ["Train.dataset.name=SimpleDataSet"]}  # its Train set is LMDB, ours a label file


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("release", REAL_CONFIG_RELEASES)
def test_real_config_exports(tree_of, release, family, tmp_path):
    tree = tree_of(release)
    found = [c for c in FAMILIES[family] if os.path.isfile(os.path.join(tree, c))]
    if not found:
        pytest.skip("%s has no %s config (%s)" % (release, family, " / ".join(FAMILIES[family])))
    config = found[0]
    try:  # as upstream's own tools/program.py reads it
        with open(os.path.join(tree, config), encoding="utf-8") as f:
            yaml.load(f, Loader=yaml.Loader)
    except yaml.YAMLError as e:
        pytest.skip("%s %s is not valid YAML upstream (%s): its own train.py cannot read it either"
                    % (release, config, str(e).splitlines()[0]))
    python = tiny_data.release_python(tree, release)
    data = tmp_path / "data"
    # even images are read correctly by the stand-in, odd ones are not
    opts = tiny_data.dataset(data, images=5, labels="12121", shape=(48, 160))[1:]  # the config's own dict
    opts += ["Eval.loader.num_workers=0"] + EXTRA_OPTS.get(family, [])
    ckpt, out = str(tmp_path / "ckpt"), str(tmp_path / "train_center.pkl")
    made = subprocess.run([python, "-m", "centerkit.standin", config, ckpt, "1"] + opts, cwd=tree,
                          env=helper_env(), capture_output=True, text=True)
    assert made.returncode == 0, made.stderr[-3000:]
    standin = json.loads(made.stdout.splitlines()[-1])
    width, one = standin["widths"].get("Student", standin["widths"].get("")), standin["class_index"]

    exported = {}
    for engine in ("", "dygraph"):  # the default (auto: the inference engine), then dygraph's to compare
        out = str(tmp_path / ("train_center%s.pkl" % engine))
        r, centers, report = export(tree, release, out, opts, PYTHON=python, CONFIG=config, CHECKPOINT=ckpt,
                                    ENGINE=engine)
        assert r.returncode == 0, output_of(r)
        assert git_status(tree) == ""
        exported[engine] = centers
        assert list(centers) == [one]  # every step of the recognised images reads "1"
        assert centers[one].dtype == np.float32 and centers[one].shape == (width,)
        assert np.isfinite(centers[one]).all()
        if engine == "":
            report_default = report
        assert (report["images_seen"], report["images_used"], report["feature_width"]) == (5, 3, width)
        assert report["engine"] == (engine or "inference")
        agreement = report["engine_agreement"]
        if engine == "":  # the first-batch check's figures, within its tolerance
            assert agreement["images"] == 2 and agreement["argmax_equal"] >= 0.99
            assert 0 <= agreement["max_abs_diff"] <= 1e-3 * agreement["feature_scale"]
        else:
            assert agreement is None
    ours, theirs = exported[""][one], exported["dygraph"][one]
    scale = float(np.abs(theirs).max())
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * scale)
    # the measured agreement docs/engines.md quotes (pytest -s shows it)
    print("engine agreement %s %s: first batch max|diff|/scale %.2g, step relative L2 %.2g; center relative L2 %.2g"
          % (release, family, report_default["engine_agreement"]["max_abs_diff_over_scale"],
             report_default["engine_agreement"]["max_step_relative_l2"],
             np.linalg.norm(ours - theirs) / np.linalg.norm(theirs)))
