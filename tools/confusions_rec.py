# ppocr-center-kit: confusions_rec.py, run by `make confusions` inside a PaddleOCR clone
# with the kit's series applied (cwd = the clone). Written for ppocr-center-kit (MIT).
"""Recognise every line of a rec config's Eval (or Train) label files, as tools/eval.py
decodes the chosen sub-model's CTC branch, and write what was read as JSON for the kit:

    python <kit>/tools/confusions_rec.py -c CONFIG -o Export.checkpoint=... \
        Export.predictions=out.json [Export.data=eval|train] [Export.model=Student] \
        [Export.engine=auto|inference|dygraph]

Everything but the loop is the clone's ppocr/utils/kit_export/ (the kit's export package,
applied by patch 0005): option parsing, config derivation, the data loader and its checks,
the model and its weights, the forward engines. So the lines are read by the Eval pipeline
in label-file order, once each, and recognised on the export's engines. Decoding is the
release's CTCLabelDecode (greedy), line accuracy and the normalised strings compared are the
release's own RecMetric with the config's Metric options (is_filter, ignore_space).

Under paddle.distributed.launch each rank reads every N-th line and writes its share;
rank 0 merges them in order and scores the lines with one RecMetric.
"""

import json
import os
import sys
import time

# The clone (cwd) first: its patched ppocr holds the export's package, ppocr.utils.kit_export.
sys.path.insert(0, os.getcwd())
from ppocr.utils.kit_export import center_math, cli, engines, errors, model, output_files, run  # noqa: E402
from ppocr.utils.kit_export import config as export_config  # noqa: E402

DATA_SETS = ("eval", "train")
METRIC = "RecMetric"
NOT_METRIC_OPTIONS = ("name", "key", "base_metric_name", "main_indicator")


def rec_metric(config):
    """The release's RecMetric with the config's Metric options (a DistillationMetric's
    base metric's, which it passes them to)."""
    from ppocr.metrics.rec_metric import RecMetric

    metric = dict(config.get("Metric") or {})
    name = metric.get("base_metric_name") if metric.get("name") == "DistillationMetric" else metric.get("name")
    if name != METRIC:
        raise errors.ExportError("the config's Metric is %s, not RecMetric (or a DistillationMetric of it); line accuracy "
                             "is RecMetric's acc, so pass a text recognition config" % (name or "missing"))
    return RecMetric(**{k: v for k, v in metric.items() if k not in NOT_METRIC_OPTIONS})


def compared(metric, text):
    """text as metric compares it: its own normalisation (spaces dropped, is_filter)."""
    if metric.ignore_space:
        text = text.replace(" ", "")
    if metric.is_filter:
        text = metric._normalize_text(text)
    return text


def line_texts(dataset, delimiter):
    """(image, label) of each sample as written in its label file, as SimpleDataSet splits
    the line; None for a dataset without label lines (LMDB)."""
    lines = getattr(dataset, "data_lines", None)
    if not isinstance(lines, list):
        return None
    out = []
    for line in lines:
        parts = (line.decode("utf-8") if isinstance(line, bytes) else line).strip("\n").split(delimiter)
        out.append((parts[0], parts[1] if len(parts) > 1 else ""))
    return out


def recognise(config, logger):
    """Every sample of this rank's share: [(index, image, label, prediction, decoded label)]."""
    device, rank, world_size = run.set_up_devices(config, logger)
    weights = export_config.weights_source(config)
    if weights is None:
        raise errors.ExportError("no checkpoint to recognise with; pass CHECKPOINT=<output/.../best_accuracy>")
    name = export_config.derive_export_config(config, model.post_process_classes(config), data=config["Export"]["data"])
    decode = model.ctc_decoder(config["Global"])
    data = run.train_images(config, device, rank, world_size, logger)
    net, _, loaded = model.build_exported_model(config, name, weights, logger, data)
    forward = engines.Forward(net, config, device, rank, world_size, logger)
    dataset = getattr(data.loader.dataset, "dataset", data.loader.dataset)  # under a Subset with several ranks
    texts = line_texts(dataset, config["Eval"]["dataset"].get("delimiter", "\t"))
    indices = iter(center_math.shard_indices(len(dataset), rank, world_size))
    rows = []
    start = time.perf_counter()
    bar = progress(len(data.loader.dataset), rank == 0)
    try:
        for batch in data.loader:
            data.check_reads()
            _, class_idx = forward(batch[0])
            preds = decode.decode(class_idx, is_remove_duplicate=True)
            targets = decode.decode(batch[1].numpy())
            for (pred, _), (target, _) in zip(preds, targets):
                i = next(indices)
                image, label = texts[i] if texts is not None else ("#%d" % (i + 1), target)
                rows.append((i, image, label, pred, target))
            bar.update(len(preds))
        data.check_reads()
    finally:
        bar.close()
    meta = dict(model=name, weights=weights.path, weights_source=weights.source,
                weights_loaded=loaded, engine=forward.engine_used(),
                release=os.environ.get("PADDLEOCR_RELEASE"), data=config["Export"]["data"],
                series=os.environ.get("PPOCR_CENTER_KIT_SERIES"), series_sha256=os.environ.get("PPOCR_CENTER_KIT_SERIES_SHA256"),
                kit_version=os.environ.get("PPOCR_CENTER_KIT_VERSION"),
                seconds=round(time.perf_counter() - start, 3), seconds_convert=round(forward.convert_seconds, 3),
                dictionary=list(decode.character),
                lines_read=[[f, n] for f, n in data.sources])
    return rows, meta, rank, world_size


def progress(total, enabled):
    from tqdm import tqdm

    return tqdm(total=total, unit="line", desc="recognise", dynamic_ncols=True, disable=not enabled)


def scored(config, rows, meta):
    """The kit's JSON: each line (image, label, prediction, right or wrong and the strings
    compared, by the release's RecMetric, called line by line) and RecMetric's acc."""
    metric = rec_metric(config)
    lines = []
    for _, image, label, pred, target in sorted(rows):
        right = metric(([(pred, 1.0)], [(target, 1.0)]))["acc"] > 0.5  # of one line: 1/(1 + eps) or 0
        lines.append(dict(image=image, label=label, prediction=pred, correct=bool(right),
                          compared=[compared(metric, label), compared(metric, pred)]))
    acc = metric.get_metric()["acc"]
    return dict(meta, lines=lines, line_accuracy=acc,
                metric=dict(name=METRIC, is_filter=bool(metric.is_filter), ignore_space=bool(metric.ignore_space)))


def main(argv=None):
    try:
        config_path, opts = cli.parse_args(sys.argv[1:] if argv is None else argv)
        config = export_config.load_config(config_path, opts)
        config["Export"]["mode"] = "eval"  # what tools/eval.py runs
        export_config.check_rec_ctc_config(config)
        out = config["Export"].get("predictions")
        if config["Export"].get("data", "eval") not in DATA_SETS or not out:
            raise errors.ExportError("DATA=%s is not one of %s" % (config["Export"].get("data"), ", ".join(DATA_SETS)))
        config["Export"].setdefault("data", "eval")
        from ppocr.utils.logging import get_logger

        logger = get_logger()
        rows, meta, rank, world_size = recognise(config, logger)
        if world_size > 1:
            import paddle.distributed as dist

            output_files.write_files({out + ".rank%d" % rank: json.dumps(rows).encode()}, True)
            dist.barrier()
            if rank != 0:
                return 0
            rows = []
            for r in range(world_size):
                with open(out + ".rank%d" % r, encoding="utf-8") as f:
                    rows += [tuple(row) for row in json.load(f)]
                os.unlink(out + ".rank%d" % r)
        output_files.write_files({out: json.dumps(scored(config, rows, meta), ensure_ascii=False).encode()}, True)
    except errors.ExportError as e:
        errors.print_error(str(e))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
