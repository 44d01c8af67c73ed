"""The export sizes the heads as training did: set_head_channels equals the derivation in
upstream's own tools/train.py (its `if hasattr(post_process_class, "character")` block,
read from each sdist and run on the same config)."""

import ast
import copy
import types

import git
import pytest
import yaml

import upstream
from conftest import SDIST_RELEASES, TABLE
from centerkit.export_script import export_script as ec

CHARS = 100


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


def train_py_derivation(train_py, source=None):
    """upstream's block, as a function of (config, number of dictionary characters)."""
    if source is None:
        with open(train_py, encoding="utf-8") as f:
            source = f.read()
    main = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == "main")
    block = next(n for n in ast.walk(main) if isinstance(n, ast.If) and "post_process_class" in ast.unparse(n.test))
    code = compile(ast.Module(body=[block], type_ignores=[]), train_py, "exec")

    def derive(config, char_num):
        exec(code, {"config": config, "post_process_class": types.SimpleNamespace(character=[""] * char_num)})

    return derive


@pytest.fixture(scope="module", params=[SDIST_RELEASES[0], SDIST_RELEASES[-1]], ids=lambda r: r.name)
def upstream_derive(request, tmp_path_factory):
    tree = upstream.sdist_tree(request.param, str(tmp_path_factory.mktemp("sdist")))
    return train_py_derivation("%s/tools/train.py" % tree)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_head_channels_equal_upstream_train_py(upstream_derive, name):
    theirs, ours = copy.deepcopy(CONFIGS[name]), copy.deepcopy(CONFIGS[name])
    upstream_derive(theirs, CHARS)
    ec.set_head_channels(ours, CHARS)
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
    derive = train_py_derivation("tools/train.py", repo.git.show("%s:tools/train.py" % rev))
    paths = [p for p in repo.git.ls_tree("-r", "--name-only", rev, "configs/rec").splitlines() if p.endswith(".yml")]
    unreadable, compared = {}, 0
    for path in paths:
        try:  # as upstream's tools/program.py reads a config
            config = yaml.load(repo.git.show("%s:%s" % (rev, path)), Loader=yaml.Loader)
        except yaml.YAMLError as e:
            unreadable[path] = "not valid YAML: %s" % str(e).splitlines()[0]
            continue
        theirs, ours = copy.deepcopy(config), copy.deepcopy(config)
        try:
            derive(theirs, CHARS)
        except Exception as e:  # noqa: BLE001 - whatever train.py raises is the reason
            unreadable[path] = "train.py raises %s: %s" % (type(e).__name__, e)
            continue
        ec.set_head_channels(ours, CHARS)
        if isinstance(theirs.get("Loss"), dict):  # back to the config's own, if any
            theirs["Loss"].pop("ignore_index", None)
            if "ignore_index" in (config.get("Loss") or {}):
                theirs["Loss"]["ignore_index"] = config["Loss"]["ignore_index"]
        assert (ours["Architecture"], ours.get("Loss")) == (theirs["Architecture"], theirs.get("Loss")), path
        compared += 1
    with capsys.disabled():
        print("\n%s: %d of %d configs/rec configs derive as train.py does; train.py cannot read %d:"
              % (release, compared, len(paths), len(unreadable)))
        for path, why in sorted(unreadable.items()):
            print("  %s: %s" % (path, why))
    assert compared > len(paths) // 2
