"""The export sizes the heads as training did: set_head_channels equals the derivation in
upstream's own tools/train.py (its `if hasattr(post_process_class, "character")` block,
read from each sdist and run on the same config)."""

import copy

import git
import pytest
import upstream
from conftest import SDIST_RELEASES, TABLE
from centerkit import head_channels
from centerkit.dropins import kit_export

CHARS = head_channels.CHARS


def multihead(second):
    return {"name": "MultiHead", "head_list": [{"CTCHead": {}}, {second: {}}]}


def single(head, post, losses):
    return {"Architecture": {"algorithm": "SVTR_LCNet", "Head": head},
            "PostProcess": {"name": post}, "Loss": {"name": "MultiLoss", "loss_config_list": losses}}


def distillation(heads, post, losses):
    models = {name: {"algorithm": "SVTR_LCNet", "Head": head} for name, head in heads.items()}
    return {"Architecture": {"algorithm": "Distillation", "Models": models},
            "PostProcess": {"name": post}, "Loss": {"name": "CombinedLoss", "loss_config_list": losses}}


CONFIGS = {
    "ctc+nrtr (PP-OCRv4/v5)": single(multihead("NRTRHead"), "CTCLabelDecode", [{"CTCLoss": None}, {"NRTRLoss": None}]),
    "ctc+sar (PP-OCRv3)": single(multihead("SARHead"), "CTCLabelDecode", [{"CTCLoss": None}, {"SARLoss": None}]),
    "ctc+sar, SAR decoding": single(multihead("SARHead"), "SARLabelDecode", [{"CTCLoss": None}, {"SARLoss": {"x": 1}}]),
    "ctc+nrtr, NRTR decoding": single(multihead("NRTRHead"), "NRTRLabelDecode", [{"CTCLoss": None}, {"NRTRLoss": None}]),
    "plain ctc (PP-OCRv2, CRNN)": single({"name": "CTCHead"}, "CTCLabelDecode", [{"CTCLoss": None}]),
    "distillation ctc+nrtr (SVTRv2, PP-OCRv4)": distillation(
        {"Teacher": multihead("NRTRHead"), "Student": multihead("NRTRHead")}, "DistillationCTCLabelDecode",
        [{"DistillationDMLLoss": {}}, {"DistillationNRTRLoss": {}}, {"DistillationDistanceLoss": {}}]),
    "distillation ctc+sar (PP-OCRv3)": distillation(
        {"Teacher": multihead("SARHead"), "Student": multihead("SARHead")}, "DistillationCTCLabelDecode",
        [{"DistillationDMLLoss": {}}, {"DistillationSARLoss": {}}]),
    "distillation ctc+nrtr, NRTR decoding (train.py's char_num accumulates)": distillation(
        {"Teacher": multihead("NRTRHead"), "Student": multihead("NRTRHead"), "Plain": {"name": "CTCHead"}},
        "DistillationNRTRLabelDecode", [{"DistillationDMLLoss": {}}, {"DistillationNRTRLoss": {}}]),
    "distillation, one sub-model plain, SAR decoding": distillation(
        {"Teacher": {"name": "CTCHead"}, "Student": multihead("SARHead")}, "DistillationSARLabelDecode",
        [{"DistillationCTCLoss": {}}, {"DistillationSARLoss": {}}]),
}


def train_py_derivation(train_py):
    with open(train_py, encoding="utf-8") as f:
        return head_channels.train_py_derivation(f.read(), train_py)


@pytest.fixture(scope="module", params=[SDIST_RELEASES[0], SDIST_RELEASES[-1]], ids=lambda r: r.name)
def upstream_derive(request, tmp_path_factory):
    tree = upstream.sdist_tree(request.param, str(tmp_path_factory.mktemp("sdist")))
    return train_py_derivation("%s/tools/train.py" % tree)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_head_channels_equal_upstream_train_py(upstream_derive, name):
    theirs, ours = copy.deepcopy(CONFIGS[name]), copy.deepcopy(CONFIGS[name])
    upstream_derive(theirs, CHARS)
    kit_export.config.set_head_channels(ours, CHARS)
    theirs["Loss"].pop("ignore_index", None)  # train.py's plain-SAR-model setting; export builds no loss
    assert ours == theirs
    heads = [m["Head"] for m in theirs["Architecture"].get("Models", {"": theirs["Architecture"]}).values()]
    assert all("out_channels" in h or "out_channels_list" in h for h in heads)  # the case was exercised


@pytest.mark.parametrize("release", [r.name for r in TABLE])
def test_every_rec_config_of_the_release(clone_source, release, capsys):
    """Clone tier, no model built: for every configs/rec/**/*.yml of the release, the block
    of its own tools/train.py and the kit's set_head_channels give the same Architecture and
    Loss (train.py's plain-SAR `Loss.ignore_index` aside: the export builds no loss). The
    configs train.py itself cannot take (invalid YAML, a block that raises) are listed with
    the reason; the kit's derivation must not fail where train.py's succeeds."""
    rev = upstream.release_revision(clone_source, release)
    if rev is None:
        pytest.skip("%s has neither tag %s nor its commit" % (clone_source, release))
    repo = git.Repo(clone_source)
    paths = [p for p in repo.git.ls_tree("-r", "--name-only", rev, "configs/rec").splitlines() if p.endswith(".yml")]
    compared, unreadable, differing = head_channels.compare(
        repo.git.show("%s:tools/train.py" % rev), {p: repo.git.show("%s:%s" % (rev, p)) for p in paths})
    assert differing == []
    with capsys.disabled():
        print("\n%s: %d of %d configs/rec configs derive as train.py does; train.py cannot read %d:"
              % (release, compared, len(paths), len(unreadable)))
        for path, why in sorted(unreadable.items()):
            print("  %s: %s" % (path, why))
    assert compared > len(paths) // 2
