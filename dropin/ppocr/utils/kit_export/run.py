# ppocr-center-kit: run.py, added to PaddleOCR as ppocr/utils/kit_export/run.py by the kit's
# patch common/0005. Written for ppocr-center-kit (MIT); it imports PaddleOCR at run time and copies none of it.
"""One export: devices, the Train data read once each (as the Eval loader reads), every
image forwarded and its recognised time steps accumulated, the centers written.
"""

import collections
import os
import tempfile
import time

from .center_math import all_reduce_accumulator, recognised, shard_indices
from .config import count_lines, derive_export_config, label_files, weights_source
from .engines import Forward
from .errors import ExportError
from .model import build_exported_model, ctc_decoder, post_process_classes
from .report import write_centers


def run(config, logger):
    """The export, in its steps; returns the report (None on ranks other than 0)."""
    device, rank, world_size = set_up_devices(config, logger)
    name, weights, ctc_decode = derive_for_this_tree(config)
    data = train_images(config, device, rank, world_size, logger)
    net, acc, loaded = build_exported_model(config, name, weights, logger, data)
    forward = Forward(net, config, device, rank, world_size, logger)
    timing = accumulate(forward, data, acc, ctc_decode, show_progress=rank == 0)
    if world_size > 1:
        all_reduce_accumulator(acc)
        if rank != 0:  # rank 0 alone writes
            return None
    # the ranks' shards cover every sample once and train_images checked that the samples
    # are the label files' lines: so each file's lines were read, all of them, once
    lines_read = {label_file: lines for label_file, lines in data.sources}
    return write_centers(config, acc, list(ctc_decode.character),
                         dict(model=name, weights=weights, weights_loaded=loaded, timing=timing, engine=forward.engine_used(),
                              engine_agreement=forward.agreement, lines_read=lines_read), logger)


def set_up_devices(config, logger):
    """(device, rank, world size): a GPU when Global.use_gpu is true and Paddle has one (a
    warning when it has none), else the CPU; the log names the device used. World size > 1
    under paddle.distributed.launch / spawn (NCCL on GPUs, gloo on CPU)."""
    import paddle

    wanted = bool(config["Global"].get("use_gpu"))
    gpus = paddle.device.cuda.device_count() if paddle.is_compiled_with_cuda() else 0
    if wanted and not gpus:
        logger.warning("Global.use_gpu is true but this Paddle %s: exporting on the CPU"
                       % ("sees no GPU" if paddle.is_compiled_with_cuda() else "is a CPU-only build"))
    device = paddle.set_device("gpu:%d" % paddle.distributed.ParallelEnv().dev_id if wanted and gpus else "cpu")
    logger.info("device: %s", paddle.get_device())
    world_size = paddle.distributed.get_world_size()
    config["Global"]["distributed"] = world_size > 1
    if world_size > 1:
        paddle.distributed.init_parallel_env()
    return device, paddle.distributed.get_rank(), world_size


def derive_for_this_tree(config):
    """derive_export_config with this tree's PostProcess; (model name, Weights, the
    CTCLabelDecode that tells recognised images), or ExportError without weights."""
    weights = weights_source(config)  # before the derivation drops the sub-model's `pretrained`
    if weights is None:
        raise ExportError("no checkpoint to export from; pass CHECKPOINT=<output/.../best_accuracy>")
    name = derive_export_config(config, post_process_classes(config))
    return name, weights, ctc_decoder(config["Global"])


TrainData = collections.namedtuple("TrainData", "loader sources check_reads")


# On a CPU large batches cost more per image (oneDNN, PP-OCRv4 mobile on 2 cores: 7.4 s per
# 100 lines at 128, 1.7 s at 8); in eval mode, without a collate_fn that pads a batch as a
# whole, an image reads the same in any batch, so the CPU takes at most CPU_BATCH at a time.
CPU_BATCH = 8


def train_images(config, device, rank, world_size, logger):
    """TrainData: a loader of the Train images through the Eval pipeline (of this rank's
    shard_indices with several ranks), the sources [(label file, lines)] and
    read_each_once's check. Every line of every label file is a
    sample, read once."""
    import paddle
    from ppocr.data import build_dataloader

    files = label_files(config["Eval"]["dataset"])  # before the build: SimpleDataSet pops them
    batch = config["Eval"]["loader"]
    if isinstance(device, paddle.CPUPlace) and config["Export"]["mode"] == "eval" and not batch.get("collate_fn"):
        batch["batch_size_per_card"] = min(int(batch["batch_size_per_card"]), CPU_BATCH)
    loader = build_dataloader(config, "Eval", device, logger)
    dataset = loader.dataset
    sources = [(f, count_lines(f)) for f in files] or [(config["Eval"]["dataset"].get("data_dir"), len(dataset))]
    if sum(n for _, n in sources) != len(dataset):
        raise ExportError(
            "the %s holds %d samples for the %d lines of %s, so some would be read twice or never; "
            "export from a SimpleDataSet or LMDBDataSet config"
            % (type(dataset).__name__, len(dataset), sum(n for _, n in sources), ", ".join(files))
        )
    check_reads = read_each_once(dataset, sources)
    if world_size > 1:
        loader = paddle.io.DataLoader(
            paddle.io.Subset(dataset, shard_indices(len(dataset), rank, world_size)),
            places=device, batch_size=loader.batch_sampler.batch_size, shuffle=False, drop_last=False,
            num_workers=loader.num_workers, return_list=True, collate_fn=loader.collate_fn,
        )
    return TrainData(loader, sources, check_reads)


def read_each_once(dataset, sources):
    """A function that raises an ExportError naming the first sample the dataset could not
    load. SimpleDataSet and LMDBDataSet replace such a sample (a missing or broken image, a
    line without a label) with another one, so one image would be read twice and the broken
    one never; the replacement is their call of self.__getitem__ from inside __getitem__,
    which this subclass notices and notes in an unnamed temp file opened for appending. An
    exception would not do: paddle's loader raises it in a thread of its own (with workers
    or not), which ends that thread and leaves the loop waiting or failing without it. The
    file is shared with the loader's forked workers, and the loop checks it every batch."""
    base = type(dataset)
    notes = tempfile.TemporaryFile("a+b")

    def __getitem__(self, idx):
        if self._export_reading is not None:
            os.write(notes.fileno(), (unreadable_sample(self, sources, self._export_reading) + "\n").encode())
        self._export_reading = idx
        try:
            return base.__getitem__(self, idx)
        finally:
            self._export_reading = None

    def check():
        noted = os.pread(notes.fileno(), 4096, 0)
        if noted:
            raise ExportError(noted.decode("utf-8", "replace").split("\n")[0])

    dataset._export_reading = None
    dataset.__class__ = type(base.__name__, (base,), {"__getitem__": __getitem__})
    return check


def unreadable_sample(dataset, sources, idx):
    """What to say about sample idx, which the dataset could not load."""
    image = ""
    lines, delimiter = getattr(dataset, "data_lines", None), getattr(dataset, "delimiter", "\t")
    if isinstance(lines, list) and idx < len(lines):
        image = "image %s, " % lines[idx].decode("utf-8", "replace").rstrip("\n").split(delimiter)[0]
    for name, count in sources:
        if idx < count:
            break
        idx -= count
    return ("training sample %sline %d of %s, cannot be read (missing, not an image, or no label; the "
            "log above has upstream's message); fix or remove that line" % (image, idx + 1, name))


def accumulate(forward, data, acc, ctc_decode, show_progress):
    """Forward every batch and add the features of the images read exactly to acc; returns
    the seconds of the loop and of its parts: waiting for the loader (whose thread or
    workers run the Eval transforms meanwhile), the forward pass (with the inference
    engine's conversion apart), the accumulation."""
    progress = _progress(len(data.loader.dataset), enabled=show_progress)
    timing = dict(load=0.0, forward=0.0, accumulate=0.0)
    start = time.perf_counter()
    try:  # the bar ends its line before any error is printed
        batches = iter(data.loader)
        while True:
            t0 = time.perf_counter()
            batch = next(batches, None)
            t1 = time.perf_counter()
            if batch is None:
                break
            data.check_reads()
            feats, class_idx = forward(batch[0])
            t2 = time.perf_counter()
            acc.update(feats, class_idx, recognised(ctc_decode, class_idx, batch[1].numpy()))
            progress(len(class_idx))
            t3 = time.perf_counter()
            timing["load"] += t1 - t0
            timing["forward"] += t2 - t1
            timing["accumulate"] += t3 - t2
        data.check_reads()
    finally:
        progress(None)
    timing["convert"] = forward.convert_seconds
    timing["forward"] -= forward.convert_seconds
    timing["loop"] = time.perf_counter() - start
    return {k: round(v, 3) for k, v in timing.items()}


def _progress(total, enabled=True):
    """A tqdm bar in images with images/s; a no-op without tqdm."""
    try:
        from tqdm import tqdm
    except ImportError:
        enabled = False
    if not enabled:
        return lambda n: None
    bar = tqdm(total=total, unit="img", desc="export centers", dynamic_ncols=True)

    def step(n):
        if n is None:
            bar.close()
        else:
            bar.update(n)

    return step
