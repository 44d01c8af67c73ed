"""The export sizes the heads as training did: set_head_channels equals the derivation in
upstream's own tools/train.py (its `if hasattr(post_process_class, "character")` block,
read from each sdist and run on the same config)."""

import ast
import copy
import types

import pytest

import upstream
from conftest import SDIST_RELEASES
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
    "distillation, one sub-model plain, SAR decoding": distillation(
        {"Teacher": {"name": "CTCHead"}, "Student": multihead("SARHead")}, "DistillationSARLabelDecode",
        [{"DistillationCTCLoss": {}}, {"DistillationSARLoss": {}}]),
}


def train_py_derivation(train_py):
    """upstream's block, as a function of (config, number of dictionary characters)."""
    with open(train_py, encoding="utf-8") as f:
        main = next(n for n in ast.parse(f.read()).body if isinstance(n, ast.FunctionDef) and n.name == "main")
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
