"""tf.data pipeline over a prepared run: cached uint16 arrays -> float batches at the model's size."""

from pathlib import Path

import numpy as np

from ..errors import DataError
from ..files import UNREADABLE
from ..resizing import resize_images, resize_masks
from .manifest import SPLITS
from .prepare import ARRAYS_DIR, SCALE, check_prepared


class PreparedSplit:
    """Memory-mapped images (uint16), masks (uint8) and labels of one split of a prepared run."""

    def __init__(self, run_dir, split):
        if split not in SPLITS:
            raise DataError(f"unknown split {split!r}; valid choices: {', '.join(SPLITS)}")
        summary = check_prepared(run_dir)
        base = Path(run_dir) / ARRAYS_DIR
        remedy = f"run `cxrsal prepare --out {run_dir}` again to rewrite it"

        def load(name, mmap_mode=None):
            path = base / f"{split}_{name}.npy"
            try:
                return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
            except UNREADABLE as e:
                raise DataError(f"{path}: not a readable packed array ({type(e).__name__}: {str(e)[:160]}); "
                                f"{remedy}") from None

        self.images, self.masks, self.labels = load("images", "r"), load("masks", "r"), load("labels")
        self.split = split
        counts = summary["counts"].get(split, {})
        n = sum(int(v) for v in counts.values()) if isinstance(counts, dict) else None
        size = summary["size"]
        for name, array, shape, dtype in (("images", self.images, (n, size, size), np.uint16),
                                          ("masks", self.masks, (n, size, size), np.uint8),
                                          ("labels", self.labels, (n,), np.uint8)):
            if array.shape != shape or array.dtype != dtype:
                raise DataError(f"{base / f'{split}_{name}.npy'}: {array.dtype} {array.shape}, not the {dtype.__name__} "
                                f"{shape} of the {n} {split} images at {size} px summary.json lists; {remedy}")
        if not np.isin(self.labels, (0, 1)).all():
            raise DataError(f"{base / f'{split}_labels.npy'}: labels other than 0 and 1; {remedy}")

    def __len__(self):
        return len(self.labels)

    @property
    def size(self):
        return self.images.shape[1]

    def arrays(self, indices=None):
        """(images float32 [N,H,W,1] in [0,1], labels float32 [N], masks float32 [N,H,W,1])."""
        idx = np.arange(len(self)) if indices is None else np.asarray(indices)
        images = (self.images[idx].astype(np.float32) / SCALE)[..., None]
        masks = self.masks[idx].astype(np.float32)[..., None]
        return images, self.labels[idx].astype(np.float32), masks


def load_batch(data, indices, size=0):
    """(images [N, S, S, 1], labels [N], masks [N, S, S, 1]) of a PreparedSplit at side `size`
    (0: as prepared), resized as the tf.data pipeline does (`cxrsal.resizing`: area down, bilinear
    up; a mask pixel is inside when any part of it was)."""
    images, labels, masks = data.arrays(indices)
    if size and size != data.size:
        images = np.asarray(resize_images(images, size))
        masks = np.asarray(resize_masks(masks, size))
    return images, labels, masks


def epoch_order(labels, *, epoch, seed, shuffle, balanced):
    """Indices of one epoch: shuffled (seed, epoch) or in order; balanced = half positives,
    drawn with replacement, as many samples as the split has."""
    n = len(labels)
    rng = np.random.default_rng([seed, epoch])
    if balanced:
        pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
        if not len(pos) or not len(neg):
            raise DataError("balanced sampling needs both classes in the split")
        order = np.concatenate([rng.choice(pos, n // 2), rng.choice(neg, n - n // 2)])
        return rng.permutation(order)
    return rng.permutation(n) if shuffle else np.arange(n)


def make_dataset(run_dir, split, *, batch_size=32, image_size=0, balanced=False, flip=False,
                 shuffle=None, seed=0, start_epoch=0, advance=True, repeat=False, with_masks=True,
                 drop_remainder=False, with_index=False, labels=None):
    """A `tf.data.Dataset` of `(images, labels, masks)` batches (or `(images, labels)`).

    `with_index` appends each image's index in the split (int64 [B]) and whether it was flipped
    (bool [B]), for targets kept outside the arrays (a detector's boxes).

    Images are float32 [B, S, S, 1] in [0, 1], labels float32 [B], masks float32 [B, S, S, 1]
    where S is `image_size` (0: the prepared size). Each pass over the dataset is one epoch,
    shuffled by (seed, epoch); `start_epoch` continues an interrupted training run's sequence;
    `advance=False` makes every pass epoch `start_epoch` (however often a trainer iterates it).
    Horizontal flips (training) are drawn from the same seeded generator, so a run is repeatable.
    `labels` replaces the split's labels (uint8 [N], the data randomization test's permutation).
    """
    import tensorflow as tf

    data = PreparedSplit(run_dir, split)
    if len(data) == 0:
        raise DataError(f"{run_dir}: split {split!r} is empty")
    split_labels = data.labels if labels is None else np.asarray(labels, np.uint8)
    if len(split_labels) != len(data):
        raise DataError(f"{run_dir}: {len(split_labels)} labels given for the {len(data)} images of {split!r}")
    shuffle = (split == "train") if shuffle is None else shuffle
    src = data.size
    epoch = [start_epoch]

    def batches():
        """Indices and flip decisions of one epoch's batches (cheap; the gathering is parallel)."""
        order = epoch_order(split_labels, epoch=epoch[0], seed=seed, shuffle=shuffle, balanced=balanced)
        rng = np.random.default_rng([seed, epoch[0], 1])
        epoch[0] += int(advance)
        stop = len(order) - (len(order) % batch_size if drop_remainder else 0)
        for start in range(0, stop, batch_size):
            idx = order[start:start + batch_size]
            yield idx, (rng.random(len(idx)) < 0.5) if flip else np.zeros(len(idx), bool)

    def gather(idx):
        return data.images[idx], split_labels[idx], data.masks[idx]

    def load(idx, flips):
        images, labels, masks = tf.numpy_function(gather, [idx], [tf.uint16, tf.uint8, tf.uint8])
        images.set_shape((None, src, src))
        masks.set_shape((None, src, src))
        labels.set_shape((None,))
        images = tf.cast(images, tf.float32)[..., None] / SCALE
        masks = tf.cast(masks, tf.float32)[..., None]
        if flip:
            f = flips[:, None, None, None]
            images = tf.where(f, tf.reverse(images, axis=[2]), images)
            masks = tf.where(f, tf.reverse(masks, axis=[2]), masks)
        if size != src:
            images, masks = resize_images(images, size), resize_masks(masks, size)
        labels = tf.cast(labels, tf.float32)
        out = (images, labels, masks) if with_masks else (images, labels)
        return out + (idx, flips) if with_index else out

    signature = (tf.TensorSpec((None,), tf.int64), tf.TensorSpec((None,), tf.bool))
    ds = tf.data.Dataset.from_generator(batches, output_signature=signature)
    size = image_size or src
    # numpy gathers on two threads (deterministic keeps the epoch's order); a batch costs
    # milliseconds, so fixed parallelism suffices, and without the autotuner's background
    # thread a 2-core training machine keeps its cores (`python benchmarks/training.py`
    # measures fit against the bare model)
    ds = ds.map(load, num_parallel_calls=2, deterministic=True)
    if repeat:
        ds = ds.repeat()
    else:
        # a known number of batches lets Keras show progress and not warn at the end of each epoch
        n = len(data) // batch_size if drop_remainder else -(-len(data) // batch_size)
        ds = ds.apply(tf.data.experimental.assert_cardinality(n))
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(2).with_options(options)


def dataset_from_config(run_dir, split, pipeline_cfg, **overrides):
    """`make_dataset` with the settings of a `PipelineConfig` (keyword overrides win)."""
    kw = dict(batch_size=pipeline_cfg.batch_size, image_size=pipeline_cfg.image_size,
              balanced=pipeline_cfg.balanced and split == "train", flip=pipeline_cfg.flip and split == "train",
              shuffle=pipeline_cfg.shuffle and split == "train", seed=pipeline_cfg.seed)
    kw.update(overrides)
    return make_dataset(run_dir, split, **kw)
