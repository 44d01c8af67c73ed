# ppocr-center-kit: engines.py, added to PaddleOCR as ppocr/utils/kit_export/engines.py by the kit's
# patch common/0005. Written for ppocr-center-kit (MIT); it imports PaddleOCR at run time and copies none of it.
"""The forward pass: Paddle Inference (the model converted to a static graph, oneDNN on a
CPU) when it converts and agrees with dygraph, else dygraph; the watch that names a native
crash while the engine is built, and the passes deleted where Paddle 2.6 is known to crash.
"""

import os
import sys
import tempfile
import time

import numpy as np

from .errors import ExportError
from .model import head_outputs


# A path prefix outside the clone, set by the kit: each rank notes there which step of the
# inference engine it is in, and faulthandler names the signal if it dies there (EngineWatch).
ENGINE_STATE_ENV = "PPOCR_CENTER_KIT_ENGINE_STATE"


ENGINE_PHASES = {"convert": "converting the model to a static graph",
                 "predictor": "building the Paddle Inference predictor",
                 "first-batch": "running the predictor's first batch"}


def crash_words(crash):
    """'died of SIGILL while building ...' of a crash {signal, phase} (Export.engine_fallback)."""
    return "died of %s while %s" % (crash.get("signal"), ENGINE_PHASES.get(crash.get("phase"), crash.get("phase")))


class Forward:
    """The forward pass Export.engine asks for. dygraph: the built model, as training runs
    it. inference: that model converted to a static graph (to_static + jit.save, into a
    temp folder outside the clone) and run by a Paddle Inference predictor, oneDNN on the
    CPU, CUDA (TensorRT with Export.tensorrt) on a GPU; the argmax is taken inside the
    graph, so the [B, T, C] scores never leave it. auto: inference when the conversion
    succeeds and its output equals dygraph's on the first images, else dygraph, with one
    log line saying why. The choice is made on the first batch, whose shape the graph is
    built for (the Eval transforms resize every image to one shape); a batch of another
    shape, if any, goes through dygraph."""

    CHECK_IMAGES = 2  # of the first batch, forwarded by both engines before the predictor is used

    def __init__(self, net, config, device, rank, world_size, logger):
        self.net, self.logger = net, logger
        self.export = config["Export"]
        self.device, self.world_size = device, world_size
        self.engine = None  # the InferenceEngine, once chosen
        self.dygraph_batches = 0  # with an engine: batches of another shape
        self.convert_seconds = 0.0
        self.agreement = None  # check_same_outputs' figures on the first batch
        self.watch = EngineWatch(rank, self.export["engine"])
        self._chosen = False

    def __call__(self, images):
        if not self._chosen:
            self._chosen = True
            try:
                self.engine = self._choose(images)
                if self.engine is not None:
                    return self._checked_first(images)
            finally:
                self.watch.leave()  # past the first batch a crash is no longer the engine's build
        if self.engine is not None and list(images.shape[1:]) == self.engine.shape:
            return self.engine(images)
        if self.engine is not None and self.dygraph_batches == 0:
            self.logger.warning("engine: a batch of shape %s, not the converted %s, goes through dygraph"
                                % (list(images.shape[1:]), self.engine.shape))
        self.dygraph_batches += 1
        return self.dygraph(images)

    def _checked_first(self, images):
        """The first batch through the new predictor, checked against dygraph's outputs on
        its first images; the converted model's folder is removed whatever happens (the
        predictor holds the model in memory once it has run)."""
        engine = self.engine
        try:
            reference = self.dygraph(images[: self.CHECK_IMAGES])
            self.watch.enter("first-batch")
            with stdout_silenced():  # oneDNN's passes print a debug line per op they check, to C++'s stdout
                outputs = engine(images)
            self.agreement = check_same_outputs(reference, outputs)
        except Exception as e:
            self.engine = None
            self._unavailable(e)
            return self.dygraph(images)
        finally:
            engine.remove_files()
        self.logger.info("engine: inference (%s; converted in %.1f s)" % (self.engine.describe, self.convert_seconds))
        return outputs

    def dygraph(self, images):
        import paddle

        with paddle.no_grad():
            feats, probs = head_outputs(self.net(images))
        return feats, argmax_on_host(probs)

    def _choose(self, images):
        import paddle

        wanted = self.export["engine"]
        if wanted == "dygraph":
            fallback = self.export.get("engine_fallback")
            self.logger.info("engine: dygraph (%s)" % ("the kit's rerun: the inference engine " + crash_words(fallback)
                                                       if isinstance(fallback, dict) else "ENGINE=dygraph"))
            return None
        if self.export["mode"] != "eval":  # check_rec_ctc_config refuses ENGINE=inference here
            self.logger.info("engine: dygraph (MODE=%s runs layers in train mode; the inference "
                             "graph is eval-only)" % self.export["mode"])
            return None
        start = time.perf_counter()
        try:
            gpu = None if isinstance(self.device, paddle.CPUPlace) else paddle.distributed.ParallelEnv().dev_id
            threads = max(1, available_cores() // self.world_size)
            return InferenceEngine(self.net, list(images.shape[1:]), gpu, threads, bool(self.export.get("tensorrt")),
                                   int(images.shape[0]), self.watch, self.logger)
        except Exception as e:  # any failure of the conversion: dygraph can still run the model
            self._unavailable(e)
            return None
        finally:
            self.convert_seconds = time.perf_counter() - start  # the time spent on it, also when it failed

    def _unavailable(self, error):
        """ENGINE=inference: an ExportError; auto: one log line, and dygraph from here on."""
        reason = " ".join(str(error).split())[:300] or type(error).__name__
        if self.export["engine"] == "inference":
            raise ExportError("ENGINE=inference: the model cannot run on Paddle Inference (%s); "
                              "pass ENGINE=dygraph" % reason)
        self.logger.warning("engine: dygraph (the inference engine is unavailable: %s)" % reason)

    def engine_used(self):
        """What the report records: the engine of the batches (both, if some fell back)."""
        if self.engine is None:
            return "dygraph"
        return "inference" + (" (%d batches of another shape: dygraph)" % self.dygraph_batches if self.dygraph_batches else "")


class InferenceEngine:
    """net as a Paddle Inference predictor for batches of images of shape [C, H, W] (gpu: the
    GPU id, None on the CPU; batch: the largest batch, for TensorRT). Raises on any failure,
    and then leaves no folder behind."""

    def __init__(self, net, shape, gpu, threads, tensorrt, batch, watch, logger):
        self.shape = shape
        # in the kit's state folder when there is one: the kit removes it also after a crash
        self.folder = tempfile.mkdtemp(prefix="ppocr-center-kit-engine-", dir=watch.folder)
        try:
            watch.enter("convert")
            save_static_graph(net, shape, self.folder)
            deleted = []
            if gpu is None:
                import paddle

                deleted, why = passes_to_delete(paddle.__version__, cpu_flags())
                if deleted:
                    logger.info("engine: the predictor is built without %s (%s)" % (", ".join(deleted), why))
            watch.enter("predictor")
            self.predictor, self.describe = new_predictor(self.folder, gpu, threads, tensorrt, [batch] + shape, deleted)
            self.input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
            self.outputs = [self.predictor.get_output_handle(n) for n in self.predictor.get_output_names()]
        except BaseException:
            self.remove_files()
            raise

    def __call__(self, images):
        self.input.copy_from_cpu(np.ascontiguousarray(images.numpy()))
        self.predictor.run()
        out = [h.copy_to_cpu() for h in self.outputs]
        feats = next(o for o in out if o.dtype.kind == "f")
        class_idx = next(o for o in out if o.dtype.kind in "iu")
        return feats, class_idx

    def remove_files(self):
        """Remove the converted model's folder (the predictor, once run, needs it no more)."""
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)


def _graph_forward(self, x):
    """The converted graph's forward: the CTC head's features and each step's argmax."""
    feats, probs = head_outputs(self.net(x))
    return feats, probs.argmax(axis=-1)


def save_static_graph(net, shape, folder):
    """jit.save a copy of net (the dygraph model stays as built, for the fallback) as
    folder/model, with the input [any batch] + shape. The recipe of the release's own
    tools/export_model.py (ppocr/utils/export_model.py from v2.9): reparameterizable layers
    (rep(), the PP-OCRv4/v5 backbones) fused, to_static with full_graph, jit.save (PIR on
    Paddle 3). Not its input specs: those are chosen per algorithm for deployment (height 32
    for most rec models, a free width for SVTR_LCNet), while the export knows the one shape
    its Eval pipeline produces and converts for exactly that."""
    import copy
    import warnings

    import paddle

    warnings.filterwarnings("ignore", message="No ccache found")  # to_static imports cpp_extension; no C++ is built
    graph = type("ExportGraph", (paddle.nn.Layer,), {"forward": _graph_forward})()
    graph.net = copy.deepcopy(net)
    graph.eval()
    for layer in graph.sublayers():
        if hasattr(layer, "rep") and not getattr(layer, "is_repped", False):
            layer.rep()
        for name, buffer in list(layer._buffers.items()):  # only the copy's: dygraph leaves them empty
            if buffer is not None and not buffer._is_initialized():
                # an LSTM's dropout state, unused in eval; Paddle 2.6's jit.save fails on an empty one
                layer.register_buffer(name, paddle.zeros([1], buffer.dtype), persistable=name not in layer._non_persistable_buffer_names_set)
    spec = [paddle.static.InputSpec(shape=[None] + list(shape), dtype="float32", name="x")]
    static = paddle.jit.to_static(graph, input_spec=spec, full_graph=True)
    paddle.jit.save(static, os.path.join(folder, "model"))


def new_predictor(folder, gpu, threads, tensorrt, batch_shape, deleted_passes=()):
    """(a Paddle Inference predictor of folder/model, a description of its options): on GPU
    gpu (TensorRT subgraphs if asked, for batches up to batch_shape), else on the CPU,
    without the optimiser passes deleted_passes (see passes_to_delete)."""
    from paddle import inference

    names = os.listdir(folder)
    graph = "model.json" if "model.json" in names else "model.pdmodel"  # PIR (Paddle 3) or the old IR
    config = inference.Config(os.path.join(folder, graph), os.path.join(folder, "model.pdiparams"))
    if gpu is not None:
        config.enable_use_gpu(512, gpu)
        describe = "GPU %d" % gpu
        if tensorrt:
            batch = [int(d) for d in batch_shape]
            config.enable_tensorrt_engine(workspace_size=1 << 30, max_batch_size=batch[0], min_subgraph_size=3,
                                          precision_mode=inference.PrecisionType.Float32, use_static=False,
                                          use_calib_mode=False)
            config.set_trt_dynamic_shape_info({"x": [1] + batch[1:]}, {"x": batch}, {"x": batch})
            describe += ", TensorRT"
    else:
        config.disable_gpu()
        config.enable_mkldnn()
        config.set_cpu_math_library_num_threads(threads)
        describe = "CPU, oneDNN, %d threads" % threads
        for name in deleted_passes:
            config.delete_pass(name)
        if deleted_passes:
            describe += ", without " + ", ".join(deleted_passes)
    config.set_optim_cache_dir(folder)  # what the optimiser caches stays in the temp folder
    config.disable_glog_info()
    return inference.create_predictor(config), describe


# The first-batch check's tolerance (check_same_outputs), as the report states it.
AGREEMENT_TOLERANCE = {"max_abs_diff_over_scale": 1e-3, "argmax_equal": 0.99}


def check_same_outputs(reference, outputs):
    """The agreement of the predictor's first outputs with dygraph's on their first images
    (reference), or a ValueError unless the features are within 1e-3 of their scale (the
    largest magnitude) and the argmax equal on 99% of the steps. The figures: the largest
    absolute difference, it over the scale, the largest relative L2 difference of one time
    step's feature vector, the share of equal argmax steps."""
    ref_feats, ref_idx = reference
    ref_feats = ref_feats.numpy() if hasattr(ref_feats, "numpy") else np.asarray(ref_feats)
    feats, class_idx = outputs[0][: len(ref_feats)], outputs[1][: len(ref_feats)]
    if feats.shape != ref_feats.shape or class_idx.shape != ref_idx.shape:
        raise ValueError("the converted model returns features %s and classes %s, dygraph %s and %s"
                         % (feats.shape, class_idx.shape, ref_feats.shape, ref_idx.shape))
    scale = max(float(np.abs(ref_feats).max()), 1e-6)
    delta = feats.astype(np.float64) - ref_feats
    diff = float(np.abs(delta).max())
    step_norms = np.maximum(np.linalg.norm(ref_feats.astype(np.float64), axis=-1), 1e-12)
    agree = float(np.mean(class_idx == ref_idx))
    if diff > AGREEMENT_TOLERANCE["max_abs_diff_over_scale"] * scale or agree < AGREEMENT_TOLERANCE["argmax_equal"]:
        raise ValueError("the converted model's outputs differ from dygraph's (features by %.3g of %.3g, "
                         "argmax equal on %.1f%% of the steps)" % (diff, scale, 100 * agree))
    return {"images": len(ref_feats), "max_abs_diff": diff, "feature_scale": scale,
            "max_abs_diff_over_scale": diff / scale,
            "max_step_relative_l2": float((np.linalg.norm(delta, axis=-1) / step_norms).max()),
            "argmax_equal": agree, "tolerance": AGREEMENT_TOLERANCE}


# Paddle 2.x's oneDNN self_attention_fuse_pass runs AVX-512 code on any CPU and dies of
# SIGILL on those without it (AMD EPYC/Ryzen, older Intel): Paddle issues 60477, 64852,
# 70156, PaddleOCR 11597; deleting the pass is the known workaround. Paddle 3's pass does
# not crash there (v3.x exports measured on an AMD EPYC without AVX-512).
FUSE_PASS_CRASH = ("self_attention_fuse_pass", "avx512f")


def passes_to_delete(paddle_version, flags):
    """([pass names], why) the CPU predictor is built without: self_attention_fuse_pass on
    Paddle 2.x unless the CPU flags (None: unknown) show AVX-512 Foundation."""
    pass_name, flag = FUSE_PASS_CRASH
    major = int(str(paddle_version).split(".")[0] or 0)
    if major >= 3 or major == 0:  # 0.0.0: a develop build, whose version says nothing
        return [], None
    if flags is not None and flag in flags:
        return [], None
    cpu = "a CPU without AVX-512 (no %s flag)" % flag if flags is not None else "a CPU whose flags are unknown"
    return [pass_name], "Paddle %s on %s: the pass dies of SIGILL there" % (paddle_version, cpu)


def cpu_flags(path="/proc/cpuinfo"):
    """The CPU's feature flags (the first `flags` line of /proc/cpuinfo), None if unknown."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep and key.strip() == "flags":
                    return set(value.split())
    except OSError:
        pass
    return None


class EngineWatch:
    """What the kit reads when this rank dies of a native signal (SIGILL, SIGSEGV, ...) while
    the inference engine is built or runs its first batch, where a Python exception would
    have been caught and answered by the dygraph fallback: the step it was in and, from
    faulthandler, the signal. Then nothing is written yet, and the kit reruns the export on
    dygraph. A file <ENGINE_STATE_ENV>.<rank> outside the clone, in the folder where the
    converted model goes too; without the variable (the script run by hand) it does nothing."""

    def __init__(self, rank, wanted):
        base = os.environ.get(ENGINE_STATE_ENV)
        self.path = base and "%s.%d" % (base, rank)
        self.folder = base and os.path.dirname(base)
        self.wanted, self.file, self._was_enabled = wanted, None, False

    def enter(self, phase):
        if not self.path:
            return
        import faulthandler

        if self.file is None:
            self.file = open(self.path, "w", encoding="utf-8")
            self._was_enabled = faulthandler.is_enabled()
            faulthandler.enable(self.file)  # chains to Paddle's own handler, which prints its C++ stack
        self.file.seek(0)
        self.file.truncate()
        self.file.write("%s %s\n" % (phase, self.wanted))
        self.file.flush()

    def leave(self):
        if self.file is None:
            return
        import faulthandler

        faulthandler.disable()
        if self._was_enabled:  # the user's PYTHONFAULTHANDLER / -X faulthandler
            faulthandler.enable()
        self.file.close()
        os.unlink(self.path)
        self.file = None


class stdout_silenced:
    """File descriptor 1 on /dev/null for the block (prints of C++ code included)."""

    def __enter__(self):
        sys.stdout.flush()
        self.saved = os.dup(1)
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)

    def __exit__(self, *exc):
        os.dup2(self.saved, 1)
        os.close(self.saved)


def available_cores():
    """The cores this process may run on (its affinity mask, e.g. a container's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def argmax_on_host(probs):
    """The [B, T] argmax class of [B, T, C] scores as a numpy array: taken on the device, so
    only B x T indices cross to the host (the scores are ~190 MB a batch for an 18k-class
    dictionary); on the CPU numpy's argmax is the fast one."""
    if probs.place.is_cpu_place():
        return probs.numpy().argmax(axis=-1)
    return probs.argmax(axis=-1).numpy()
