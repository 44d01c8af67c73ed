"""Issue 12, GPUs without a GPU: the launcher command for CPU-only and CUDA builds of paddle
(the capability query answered by a stand-in Python), the device the export logs and its
warning when `use_gpu: true` cannot be honoured, and the argmax taken on the device."""

import logging
import os
import stat

import numpy as np
import pytest

from centerkit import KitError, supervise
from centerkit.dropins import kit_export

LAUNCH = ["-m", "paddle.distributed.launch", "--nproc_per_node", "4", "--log_dir"]


def fake_python(tmp_path, gpus):
    """A `python` whose paddle answers the capability query with `gpus` (0: a CPU-only build)."""
    path = tmp_path / ("python-%d-gpus" % gpus)
    path.write_text("#!/bin/sh\necho %d\n" % gpus)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.mark.parametrize("gpus,use_gpu,backend", [
    (0, False, "gloo"),  # CPU-only build
    (0, True, "gloo"),   # CPU-only build, use_gpu: true cannot be honoured: warned
    (2, True, None),     # CUDA build with GPUs: one process per GPU, paddle's NCCL
    (2, False, "gloo"),  # CUDA build, use_gpu: false: gloo explicitly, never NCCL for CPU tensors
])
def test_launcher_command(tmp_path, capsys, gpus, use_gpu, backend):
    args, env = supervise.launcher("4", use_gpu, fake_python(tmp_path, gpus))
    assert args[:len(LAUNCH)] == LAUNCH and len(args) == len(LAUNCH) + 1 and os.path.isdir(args[-1])
    os.rmdir(args[-1])
    assert env == ({"PADDLE_DISTRI_BACKEND": backend} if backend else {})
    err = capsys.readouterr().err
    assert ("use_gpu is true but" in err) == (use_gpu and not gpus), err


def test_one_process_needs_no_launcher_nor_query(tmp_path):
    assert supervise.launcher("", True, str(tmp_path / "no-python")) == ([], {})
    with pytest.raises(KitError):
        supervise.launcher("2", True, str(tmp_path / "no-python"))  # the query itself fails: one line
    with pytest.raises(KitError, match="NPROC=x"):
        supervise.launcher("x", False, "python")


def test_export_logs_the_device_and_warns_on_a_cpu_build(caplog):
    paddle = pytest.importorskip("paddle")
    if paddle.is_compiled_with_cuda():
        pytest.skip("this paddle has CUDA")
    logger = logging.getLogger("export-test")
    config = {"Global": {"use_gpu": True}}
    with caplog.at_level(logging.INFO, logger="export-test"):
        device, rank, world = kit_export.run.set_up_devices(config, logger)
    assert (rank, world) == (0, 1) and "cpu" in str(device).lower()
    assert "Global.use_gpu is true but this Paddle is a CPU-only build: exporting on the CPU" in caplog.text
    assert "device: cpu" in caplog.text


class _Place:
    def __init__(self, cpu):
        self.cpu = cpu

    def is_cpu_place(self):
        return self.cpu


class _DeviceScores:
    """[B, T, C] scores on a GPU: only its [B, T] argmax may be copied to the host."""

    place = _Place(False)

    def __init__(self, scores):
        self.scores = scores

    def numpy(self):
        raise AssertionError("the whole [B, T, C] scores were copied to the host")

    def argmax(self, axis):
        return _HostCopy(self.scores.argmax(axis=axis))


class _HostCopy:
    def __init__(self, value):
        self.value = value

    def numpy(self):
        return self.value


def test_argmax_is_taken_on_the_device():
    scores = np.random.default_rng(0).normal(size=(2, 5, 7)).astype(np.float32)
    got = kit_export.engines.argmax_on_host(_DeviceScores(scores))
    assert got.shape == (2, 5) and (got == scores.argmax(-1)).all()
