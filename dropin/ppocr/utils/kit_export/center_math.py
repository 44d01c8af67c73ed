# ppocr-center-kit: center_math.py, added to PaddleOCR as ppocr/utils/kit_export/center_math.py by the kit's
# patch common/0005. Written for ppocr-center-kit (MIT); it imports PaddleOCR at run time and copies none of it.
"""The center math: per class, the sum and count of the CTC features of the time steps
whose argmax is that class, over the images recognised exactly (as upstream's
update_center); their means are the centers. Sharded over ranks, summed by one all_reduce.
"""

import functools

import numpy as np


class CenterAccumulator:
    """Running per-class sums of CTC features over the correctly recognised samples.

    Equal to upstream program.update_center's running mean (it averages every time step's
    feature into the center of that step's argmax class, blank included), without its
    Python loop over samples and steps. Each batch is summed per class in one sweep of a
    CSR one-hot matrix (class x step) times the features, into float32 partial sums (the
    features' own dtype); a class's partial is folded into the float64 sums once it holds
    more than `fold_rows` steps and at the end. So every float32 sum covers at most
    fold_rows + one batch of steps (relative error ~1e-6), and memory is O(classes x width)
    whatever the dataset size.
    """

    def __init__(self, num_classes, width, fold_rows=1024):
        self.sums = np.zeros((num_classes, width))  # float64
        self.counts = np.zeros(num_classes, np.int64)
        self.images_seen = 0
        self.images_used = 0
        self._partial = np.zeros((num_classes, width), np.float32)
        self._pending = np.zeros(num_classes, np.int64)  # steps in _partial, per class
        self._fold_rows = fold_rows

    def update(self, feats, class_idx, keep):
        """feats [B, T, D] (Tensor or array), class_idx [B, T] argmax per step, keep [B] bool."""
        keep = np.asarray(keep, bool)
        self.images_seen += len(keep)
        self.images_used += int(keep.sum())
        if not keep.any():
            return
        num_classes = len(self.counts)
        # Steps of unrecognised samples get class num_classes: sorted last, outside the matrix.
        idx = np.where(keep[:, None], np.asarray(class_idx), num_classes).reshape(-1)
        rows = _as_float32_rows(feats, len(idx))
        steps = np.bincount(idx, minlength=num_classes + 1)[:num_classes]
        # A stable sort of 16-bit keys is numpy's radix sort: the CSR column order, O(steps).
        key = idx.astype(np.uint16) if num_classes < 2**16 else idx
        order = np.argsort(key, kind="stable")[: steps.sum()]
        indptr = np.concatenate(([0], np.cumsum(steps)))
        _add_csr_product(self._partial, indptr, order, rows)
        self.counts += steps
        self._pending += steps
        full = np.flatnonzero(self._pending > self._fold_rows)
        if full.size:
            self._fold(full)

    def _fold(self, classes=slice(None)):
        self.sums[classes] += self._partial[classes]
        self._partial[classes] = 0
        self._pending[classes] = 0

    def totals(self):
        """(float64 sums, counts) of everything seen so far."""
        self._fold()
        return self.sums, self.counts

    def centers(self):
        """{int class index: float32 (width,)}, the format CenterLoss loads."""
        sums, counts = self.totals()
        present = np.flatnonzero(counts)
        means = (sums[present] / counts[present, None]).astype(np.float32)
        return {int(c): means[i] for i, c in enumerate(present)}


def _as_float32_rows(feats, num_rows):
    """[B, T, D] features as a C-contiguous float32 [B*T, D] array; on CPU no copy (dlpack)."""
    if hasattr(feats, "place"):  # a paddle Tensor
        on_cpu = feats.place.is_cpu_place() and hasattr(feats, "__dlpack__")  # 3.x: shared memory
        feats = np.from_dlpack(feats) if on_cpu else feats.numpy()
    return np.ascontiguousarray(np.asarray(feats).reshape(num_rows, -1), dtype=np.float32)


@functools.lru_cache(maxsize=None)
def csr_kernel():
    """scipy's CSR kernel (Y += A @ X in place), or None without scipy (it comes with
    scikit-image, which every PaddleOCR requirements.txt lists). Imported when the centers
    are summed, not with the module: scipy.sparse is ~0.5 s of every kit command (make
    status, check) otherwise."""
    try:
        from scipy.sparse._sparsetools import csr_matvecs
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    return csr_matvecs


def _add_csr_product(out, indptr, columns, rows):
    """out[c] += sum of rows[columns[indptr[c]:indptr[c + 1]]] for every class c, in float32.

    scipy's CSR kernel walks each class's steps with one output row in cache; paddle's CPU
    index_add_ costs ~3x as much (an Eigen expression per step) and numpy's add.at ~30x.
    """
    kernel = csr_kernel()
    if kernel is None:
        np.add.at(out, np.repeat(np.arange(len(out)), np.diff(indptr)), rows[columns])
        return
    ones = np.ones(len(columns), np.float32)
    kernel(len(out), len(rows), out.shape[1], indptr, columns, ones, rows.ravel(), out.ravel())


def shard_indices(num_samples, rank, world_size):
    """This rank's sample indices: every world_size-th one, so across ranks no image is read
    twice or skipped (paddle's DistributedBatchSampler pads the last batch with repeats)."""
    return list(range(rank, num_samples, world_size))


def summed(value):
    """value (an array) summed over every rank."""
    import paddle
    import paddle.distributed as dist

    tensor = paddle.to_tensor(value)
    dist.all_reduce(tensor)
    return tensor.numpy()


def all_reduce_accumulator(acc):
    """Sum every rank's float64 sums, counts and image tallies, once, at the end."""
    sums, counts = acc.totals()
    acc.sums, acc.counts = summed(sums), summed(counts)
    acc.images_seen, acc.images_used = (int(v) for v in summed(np.array([acc.images_seen, acc.images_used], np.int64)))


def correct_mask(post_result):
    """Which samples a (predictions, labels) post-process result recognised exactly."""
    preds, labels = post_result
    return np.array([p[0] == l[0] for p, l in zip(preds, labels)], bool)


def recognised(ctc_decode, class_idx, labels):
    """correct_mask of what CTCLabelDecode reads from the argmax path, decoded from the
    argmax the accumulation uses too (the stock script computes it twice per batch)."""
    return correct_mask((ctc_decode.decode(class_idx, is_remove_duplicate=True), ctc_decode.decode(labels)))
