"""One rank of the 2-process test (run by paddle.distributed.launch): the export script's
own sharding and all_reduce over a synthetic data set whose sample i is a pure function of i.

usage: PYTHONPATH=<kit>/scripts dist_worker.py NUM_SAMPLES BATCH_SIZE OUT_PKL
"""

import pickle
import sys

import numpy as np

from centerkit.dropins import kit_export

CLASSES, STEPS, WIDTH = 7, 5, 3


def sample(i):
    """(features [T, D], argmax class per step [T], recognised?) of sample i."""
    rng = np.random.default_rng(i)
    return rng.normal(size=(STEPS, WIDTH)).astype(np.float32), rng.integers(0, CLASSES, STEPS), i % 3 != 0


def accumulate(indices, batch_size):
    acc = kit_export.center_math.CenterAccumulator(CLASSES, WIDTH)
    for start in range(0, len(indices), batch_size):
        feats, idx, keep = zip(*(sample(i) for i in indices[start:start + batch_size]))
        acc.update(np.stack(feats), np.stack(idx), np.array(keep))
    return acc


def main(num_samples, batch_size, out):
    import paddle
    import paddle.distributed as dist

    paddle.set_device("cpu")
    dist.init_parallel_env()
    rank, world = dist.get_rank(), dist.get_world_size()
    acc = accumulate(kit_export.center_math.shard_indices(num_samples, rank, world), batch_size)
    kit_export.center_math.all_reduce_accumulator(acc)
    if rank == 0:
        with open(out, "wb") as f:
            pickle.dump((world, acc.images_seen, acc.images_used, acc.centers()), f)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
