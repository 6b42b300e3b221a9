"""Faithfulness of saliency maps: ROAD, deletion and insertion curves (NumPy and SciPy; no TensorFlow).

- ROAD (Rong et al., ICML 2022, "A Consistent and Efficient Evaluation Strategy for Attribution
  Methods"): remove the most (MoRF) or least (LeRF) relevant fraction of the pixels, fill them by
  noisy linear imputation, and record the class probability at each fraction; a faithful map
  makes the MoRF curve fall faster than the LeRF one (gap = LeRF area - MoRF area, higher is
  better).
- Deletion and insertion (Petsiuk et al., BMVC 2018, "RISE"): the most relevant pixels first,
  set to the image's mean (deletion, lower area is better) or copied into a blurred copy of the
  image (insertion, higher area is better).

The model is reached only through a callable ``predict(batch [N, H, W, C]) -> probabilities [N]``
(`class_probability` turns logits into that); `faithfulness_curves` builds every input of a batch
of images and evaluates them in as few calls as possible.
"""

import functools
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse import linalg as sparse_linalg
from scipy.special import expit, softmax

from ..errors import CxrsalError

ROAD_FRACTIONS = tuple(k / 10 for k in range(1, 10))
DELETION_STEPS = 16
NOISE_SD = 0.01

# the 8 neighbours (dy, dx) of a pixel and their weights in the linear imputation (Rong et al.)
_OFFSETS = np.array([(-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)])
_WEIGHTS = np.array([1 / 6] * 4 + [1 / 12] * 4)
# a box of the nested dissection with at most this many pixels is ordered row by row
_LEAF_PIXELS = 64

_trapezoid = getattr(np, "trapezoid", None) or np.trapz   # NumPy < 2 has only trapz


def _as_image(image):
    """An image [H, W, C] as a float array (float32 and float64 kept, anything else float64)."""
    a = np.asarray(image)
    if a.ndim != 3:
        raise CxrsalError(f"an image is [H, W, C], got shape {a.shape}")
    return a if a.dtype in (np.float32, np.float64) else a.astype(np.float64)


def _as_order(order, pixels):
    order = np.asarray(order)
    if order.shape != (pixels,):
        raise CxrsalError(f"a relevance order of {pixels} pixels was expected, got shape {order.shape}")
    return order


def _as_removed(removed, img):
    removed = np.asarray(removed, bool)
    if removed.shape != img.shape[:2]:
        raise CxrsalError(f"removed pixels {removed.shape} do not match the image {img.shape}")
    return removed


def relevance_order(raw_map, *, channels):
    """Flat pixel indices from the most to the least relevant.

    Relevance is the raw value of a 2-D map [H, W] (``channels=False``) or the channel sum of
    |value| of a raw map [H, W, C] (``channels=True``). Equal relevance keeps the lower pixel
    index first (a stable sort); pixels of non-finite relevance come last.

    >>> relevance_order(np.array([[0.5, 2.0], [0.5, -3.0]]), channels=False)
    array([1, 0, 2, 3])
    >>> relevance_order(np.array([[[1.0, -1.0], [0.5, 0.5]]]), channels=True)
    array([0, 1])
    """
    a = np.asarray(raw_map, np.float64)
    if a.ndim != (3 if channels else 2):
        raise CxrsalError(f"a raw map is {'[H, W, C]' if channels else '[H, W]'} "
                          f"with channels={channels}, got shape {a.shape}")
    relevance = (np.abs(a).sum(axis=-1) if channels else a).ravel()
    # NaN sorts last in argsort; +inf would otherwise come first
    relevance = np.where(np.isfinite(relevance), relevance, np.nan)
    return np.argsort(-relevance, kind="stable")


def _dissection_order(height, width):
    """Flat indices of an H x W grid in nested-dissection order: each box is cut by its middle
    row or column (which separates the two halves for the 8-neighbour stencil), the two halves
    come first, the cut last. Eliminating pixels in this order keeps the fill-in of the sparse
    factorization low."""
    grid = np.arange(height * width).reshape(height, width)
    parts = []

    def visit(y0, y1, x0, x1):
        h, w = y1 - y0, x1 - x0
        if h <= 0 or w <= 0:
            return
        if h * w <= _LEAF_PIXELS:
            parts.append(grid[y0:y1, x0:x1].ravel())
        elif h >= w:
            cut = (y0 + y1) // 2
            visit(y0, cut, x0, x1)
            visit(cut + 1, y1, x0, x1)
            parts.append(grid[cut, x0:x1])
        else:
            cut = (x0 + x1) // 2
            visit(y0, y1, x0, cut)
            visit(y0, y1, cut + 1, x1)
            parts.append(grid[y0:y1, cut])

    visit(0, height, 0, width)
    return np.concatenate(parts)


@functools.lru_cache(maxsize=8)
def _grid(height, width):
    """An image size's pixels in nested-dissection order [n], their 8 neighbours' flat indices
    [n, 8] (n for a neighbour outside the image) and the sum of their existing neighbours'
    weights [n]; read-only, shared by every imputation at that size."""
    order = _dissection_order(height, width)
    ny = order[:, None] // width + _OFFSETS[:, 0]
    nx = order[:, None] % width + _OFFSETS[:, 1]
    inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
    neighbours = np.where(inside, ny * width + nx, height * width).astype(np.int32)
    weight_sums = (_WEIGHTS * inside).sum(axis=1)
    for a in (order, neighbours, weight_sums):
        a.flags.writeable = False
    return order, neighbours, weight_sums


def imputation_system(image, removed):
    """The sparse linear system of the linear imputation, built without a loop over pixels.

    Unknown j is pixel ``pixels[j]`` (flat index; the removed pixels in nested-dissection order).
    Each removed pixel equals the weighted mean of its existing neighbours (weight 1/6 for the 4
    direct, 1/12 for the 4 diagonal ones; neighbours outside the image drop out of the sum). Both
    sides are multiplied by the sum of the weights, which makes the matrix symmetric positive
    definite whenever a pixel is kept (every group of removed pixels then touches a kept one):
    row j reads ``sum_k(w_k) x_j - sum_{removed k} w_k x_k = sum_{kept k} w_k image_k``. With
    every pixel removed it is singular (`impute` takes the image's mean then).

    Returns (matrix [m, m], CSC; right-hand sides [m, C], float64; pixels [m]).
    """
    img = _as_image(image)
    height, width, nch = img.shape
    removed = _as_removed(removed, img)
    order, neighbours, weight_sums = _grid(height, width)
    chosen = removed.ravel()[order]
    pixels = order[chosen]
    m = pixels.size
    unknown = np.full(height * width + 1, -1, np.int32)     # -1: kept, or outside the image
    unknown[pixels] = np.arange(m, dtype=np.int32)
    col = unknown[neighbours[chosen]]                       # [m, 8]
    # right-hand sides: the weighted sum of the kept neighbours, as shifted slices of the image
    # with its removed pixels zeroed and a border of zeros (the outside)
    kept = np.zeros((height + 2, width + 2, nch))
    kept[1:-1, 1:-1] = np.where(removed[..., None], 0.0, img)
    total = np.zeros((height, width, nch))
    for (dy, dx), w in zip(_OFFSETS, _WEIGHTS):
        total += w * kept[1 + dy:1 + dy + height, 1 + dx:1 + dx + width]
    rhs = total.reshape(-1, nch)[pixels]
    # symmetric: column j holds the same entries as row j (its diagonal and its removed neighbours)
    present = np.concatenate([np.ones((m, 1), bool), col >= 0], axis=1)
    data = np.concatenate([weight_sums[chosen][:, None], np.broadcast_to(-_WEIGHTS, (m, 8))], axis=1)[present]
    rows = np.concatenate([np.arange(m, dtype=np.int32)[:, None], col], axis=1)[present]
    indptr = np.concatenate([[0], np.cumsum(present.sum(axis=1), dtype=np.int32)])
    matrix = sparse.csc_array((data, rows, indptr), shape=(m, m))
    matrix.sort_indices()
    return matrix, rhs, pixels


def _solve(matrix, rhs):
    # a direct solve: conjugate gradients (Jacobi, incomplete-LU or two-grid preconditioned) took
    # longer at every fraction of 224 px images. The matrix is symmetric positive definite and
    # already in a low-fill order: no column permutation, no pivoting
    lu = sparse_linalg.splu(matrix, permc_spec="NATURAL", diag_pivot_thresh=0.0,
                            options={"SymmetricMode": True})
    if rhs.shape[1] > 1 and (rhs == rhs[:, :1]).all():     # a grey image in C channels: one solve
        return np.repeat(lu.solve(rhs[:, :1]), rhs.shape[1], axis=1)
    return lu.solve(rhs)


def _filled(img, removed):
    """The image in float64 with its removed pixels linearly imputed, before the noise."""
    out = img.astype(np.float64)
    if removed.all():
        out[...] = img.mean(axis=(0, 1), dtype=np.float64)
    elif removed.any():
        matrix, rhs, pixels = imputation_system(img, removed)
        out.reshape(-1, img.shape[2])[pixels] = _solve(matrix, rhs)
    return out


def _noisy(filled, removed, rng, noise_sd, dtype):
    count = int(removed.sum())
    if noise_sd and count:
        filled[removed] += rng.normal(0.0, noise_sd, (count, filled.shape[2]))
    return filled.astype(dtype, copy=False)


def impute(image, removed, *, rng, noise_sd=NOISE_SD):
    """Noisy linear imputation (ROAD, Rong et al. 2022) of the removed pixels of an image.

    image: [H, W, C] (values in [0, 1] for the default noise); removed: bool [H, W]. Every removed
    pixel becomes the weighted mean of its 8 neighbours (1/6 direct, 1/12 diagonal; at the border
    the missing neighbours drop out), kept neighbours being known values and removed ones
    unknowns: one sparse system over all removed pixels, solved for all channels at once (see
    `imputation_system`). Then Gaussian noise of sd `noise_sd`, drawn from `rng` in row-major
    order of the removed pixels, is added to the filled pixels only (`rng` is unused when
    `noise_sd` is 0 or nothing is removed). With every pixel removed nothing is known: the
    pixels take the image's per-channel mean (plus the noise). Returns a new image of the
    input's float dtype.

    >>> img = np.array([[[0.0], [9.0], [1.0]]])
    >>> impute(img, np.array([[False, True, False]]), rng=None, noise_sd=0.0)[0, :, 0]
    array([0. , 0.5, 1. ])
    """
    img = _as_image(image)
    removed = _as_removed(removed, img)
    return _noisy(_filled(img, removed), removed, rng, noise_sd, img.dtype)


def removed_count(fraction, pixels):
    """The number of pixels a fraction removes: floor(fraction * pixels + 1/2), rounding half up,
    in exact arithmetic on the fraction as written (its shortest decimal: in floating point
    0.7 * 45 falls just below 31.5).

    >>> removed_count(0.1, 25), removed_count(0.7, 45), removed_count(0.5, 4)
    (3, 32, 2)
    """
    if not 0.0 <= fraction <= 1.0:
        raise CxrsalError(f"a fraction of the pixels lies in [0, 1], got {fraction}")
    return math.floor(Fraction(repr(float(fraction))) * pixels + Fraction(1, 2))


def road_batch(image, order, *, rng, fractions=ROAD_FRACTIONS, noise_sd=NOISE_SD, executor=None):
    """ROAD's inputs of one image: (morf [F, H, W, C], lerf [F, H, W, C]).

    At fraction f, MoRF imputes the first `removed_count(f, H*W)` pixels of `order` (most
    relevant first, `relevance_order`) and LeRF the same number of its last pixels, as `impute`
    does; the noise is drawn from `rng` fraction by fraction, MoRF before LeRF. `executor` (a
    `concurrent.futures` executor): the sparse solves run on it (SuperLU releases the GIL while
    it factorizes), the noise is still drawn here in that order: the same images either way.
    """
    img = _as_image(image)
    height, width, _ = img.shape
    n = height * width
    order = _as_order(order, n)
    masks = []
    for fraction in fractions:
        k = removed_count(fraction, n)
        for chosen in (order[:k], order[n - k:]):
            removed = np.zeros(n, bool)
            removed[chosen] = True
            masks.append(removed.reshape(height, width))
    filled = (map if executor is None else executor.map)(functools.partial(_filled, img), masks)
    out = np.empty((len(masks),) + img.shape, img.dtype)
    for i, (image_i, removed) in enumerate(zip(filled, masks)):
        out[i] = _noisy(image_i, removed, rng, noise_sd, img.dtype)
    return out[0::2], out[1::2]


def _step_counts(pixels, steps):
    """Pixels changed at steps 0..steps: round-half-up of k * pixels / steps, in integers."""
    if steps < 1:
        raise CxrsalError(f"deletion and insertion need at least 1 step, got {steps}")
    k = np.arange(steps + 1)
    return (2 * k * pixels + steps) // (2 * steps)


def deletion_batch(image, order, *, steps=DELETION_STEPS):
    """Deletion's inputs (Petsiuk et al. 2018): [steps + 1, H, W, C]; step k sets the first
    k / steps of the pixels of `order` (rounded half up) to the image's per-channel mean.

    >>> deletion_batch(np.array([[[0.0], [4.0]]]), np.array([1, 0]), steps=2)[:, 0, :, 0]
    array([[0., 4.],
           [0., 2.],
           [2., 2.]])
    """
    img = _as_image(image)
    n = img.shape[0] * img.shape[1]
    order = _as_order(order, n)
    mean = img.mean(axis=(0, 1), dtype=np.float64)
    out = np.repeat(img[None], steps + 1, axis=0)
    for k, count in enumerate(_step_counts(n, steps)):
        out[k].reshape(n, -1)[order[:count]] = mean
    return out


def insertion_batch(image, blurred, order, *, steps=DELETION_STEPS):
    """Insertion's inputs (Petsiuk et al. 2018): [steps + 1, H, W, C]; step k is `blurred` with
    the first k / steps of the pixels of `order` (rounded half up) copied from `image`."""
    img = _as_image(image)
    blurred = np.asarray(blurred)
    if blurred.shape != img.shape:
        raise CxrsalError(f"the blurred image {blurred.shape} does not match the image {img.shape}")
    n = img.shape[0] * img.shape[1]
    order = _as_order(order, n)
    source = img.reshape(n, -1)
    out = np.repeat(blurred.astype(img.dtype, copy=False)[None], steps + 1, axis=0)
    for k, count in enumerate(_step_counts(n, steps)):
        out[k].reshape(n, -1)[order[:count]] = source[order[:count]]
    return out


def gaussian_blur(image, *, sd):
    """Each channel of an image [H, W, C] blurred by a Gaussian of sd `sd` pixels (reflected at
    the border; `scipy.ndimage.gaussian_filter`), in the image's float dtype."""
    img = _as_image(image)
    return ndimage.gaussian_filter(img.astype(np.float64), sigma=(sd, sd, 0)).astype(img.dtype, copy=False)


def curve_area(x, y):
    """Trapezoid area under a curve y(x).

    >>> curve_area([0.0, 0.5, 1.0], [1.0, 0.5, 0.0])
    0.5
    """
    return float(_trapezoid(np.asarray(y, np.float64), np.asarray(x, np.float64)))


def class_probability(logits, *, cls=None):
    """The explained class's probability from a model's outputs: logits [N] or [N, 1] through
    the sigmoid; [N, K >= 2] through the softmax, class `cls`.

    >>> class_probability(np.array([0.0, 0.0]))
    array([0.5, 0.5])
    >>> class_probability(np.array([[0.0, 0.0, 0.0]]), cls=2).round(4)
    array([0.3333])
    """
    z = np.asarray(logits, np.float64)
    if z.ndim == 1 or (z.ndim == 2 and z.shape[1] == 1):
        if cls not in (None, 0):
            raise CxrsalError(f"a single logit per image has class 0 only, got cls={cls}")
        return expit(z.reshape(-1))
    if z.ndim != 2:
        raise CxrsalError(f"logits are [N], [N, 1] or [N, K], got shape {z.shape}")
    if cls is None or not 0 <= cls < z.shape[1]:
        raise CxrsalError(f"logits of {z.shape[1]} classes need the explained class 0..{z.shape[1] - 1}, "
                          f"got cls={cls}")
    return softmax(z, axis=1)[:, cls]


@dataclass(frozen=True)
class FaithfulnessCurves:
    """One image's faithfulness curves (class probabilities) and their trapezoid areas.

    morf, lerf: [F], one per ROAD fraction; morf_auc, lerf_auc over the fractions and
    road_gap = lerf_auc - morf_auc (NaN without fractions). deletion, insertion: [steps + 1],
    step k at x = k / steps; their areas over x in [0, 1].
    """

    morf: np.ndarray
    lerf: np.ndarray
    morf_auc: float
    lerf_auc: float
    road_gap: float
    deletion: np.ndarray
    deletion_auc: float
    insertion: np.ndarray
    insertion_auc: float


def _predict_all(predict, blocks, total, batch_size):
    """The probabilities of every input of `blocks` (arrays [n, H, W, C], in order), from calls
    of `batch_size` inputs (the last one smaller): the fewest calls there can be."""
    out = np.empty(total, np.float64)
    batch, filled, done = None, 0, 0
    for block in blocks:
        if batch is None:
            batch = np.empty((batch_size,) + block.shape[1:], block.dtype)
        start = 0
        while start < len(block):
            take = min(batch_size - filled, len(block) - start)
            batch[filled:filled + take] = block[start:start + take]
            filled, start = filled + take, start + take
            if filled == batch_size or done + filled == total:
                p = np.asarray(predict(batch[:filled]), np.float64).reshape(-1)
                if p.size != filled:
                    raise CxrsalError(f"predict returned {p.size} probabilities for a batch of {filled} inputs")
                out[done:done + filled] = p
                done, filled = done + filled, 0
    return out


def faithfulness_curves(predict, images, raw_maps, *, channels, rng_for, fractions=ROAD_FRACTIONS,
                        steps=DELETION_STEPS, blur_sd=None, noise_sd=NOISE_SD, batch_size=32, executor=None):
    """ROAD, deletion and insertion curves of a batch of images and their raw maps.

    predict: batch [n, H, W, C] -> the explained class's probability [n] (the batch array is
    reused between calls: copy it to keep it). images: [N, H, W, C]; raw_maps: [N, H, W, C]
    (``channels=True``) or [N, H, W], ranked by `relevance_order`. rng_for(i): image i's
    `numpy.random.Generator` for ROAD's noise, so that a result does not depend on the batch
    it was computed in. fractions: ROAD's (empty: no ROAD); steps: deletion's and insertion's;
    blur_sd: insertion's blur in pixels (default: the longer side / 16); executor: ROAD's sparse
    solves run on it (`road_batch`).

    Every input of every image is evaluated in ceil(N * (2F + 2 (steps + 1)) / batch_size)
    calls; the inputs are built as the batches fill, so memory holds one image's inputs and one
    batch. Returns one `FaithfulnessCurves` per image.
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise CxrsalError(f"images are [N, H, W, C], got shape {images.shape}")
    if len(raw_maps) != len(images):
        raise CxrsalError(f"{len(raw_maps)} raw maps for {len(images)} images")
    if batch_size < 1:
        raise CxrsalError(f"batch_size is at least 1, got {batch_size}")
    _step_counts(1, steps)   # checks steps
    fractions = tuple(float(f) for f in fractions)
    n_road, n_steps = len(fractions), steps + 1
    per_image = 2 * n_road + 2 * n_steps
    sd = max(images.shape[1:3]) / 16 if blur_sd is None else blur_sd

    def inputs():
        for i, image in enumerate(images):
            order = relevance_order(raw_maps[i], channels=channels)
            if n_road:
                yield from road_batch(image, order, rng=rng_for(i), fractions=fractions, noise_sd=noise_sd,
                                      executor=executor)
            yield deletion_batch(image, order, steps=steps)
            yield insertion_batch(image, gaussian_blur(image, sd=sd), order, steps=steps)

    probs = _predict_all(predict, inputs(), len(images) * per_image, batch_size).reshape(len(images), per_image)
    x = np.arange(n_steps) / steps
    results = []
    for row in probs:
        morf, lerf, deletion, insertion = np.split(row, np.cumsum([n_road, n_road, n_steps]))
        morf_auc = curve_area(fractions, morf) if n_road else math.nan
        lerf_auc = curve_area(fractions, lerf) if n_road else math.nan
        results.append(FaithfulnessCurves(morf=morf, lerf=lerf, morf_auc=morf_auc, lerf_auc=lerf_auc,
                                          road_gap=lerf_auc - morf_auc, deletion=deletion,
                                          deletion_auc=curve_area(x, deletion), insertion=insertion,
                                          insertion_auc=curve_area(x, insertion)))
    return results
