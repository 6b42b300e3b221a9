"""`cxrsal train`'s task: the classifier (BCE, early stopping on validation AUC), and its evaluation."""

import weakref

import numpy as np

from ..config import to_dict
from ..runs import CLASSIFICATION, Run, Task, register_task


def auc_score(labels, scores):
    """ROC AUC (scikit-learn); NaN when the split holds a single class."""
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels).ravel()
    if len(np.unique(labels)) < 2:
        return float("nan")
    return float(roc_auc_score(labels, np.asarray(scores).ravel()))


def auc_interval(labels, scores, replicates=1000, seed=0):
    """95 % percentile interval of the ROC AUC over `replicates` image-level bootstrap resamples
    ([low, high]; NaN when a split holds a single class)."""
    from ..metrics import bootstrap_auc_ci

    labels = np.asarray(labels).ravel()
    if len(np.unique(labels)) < 2:
        return [float("nan"), float("nan")]
    low, high = bootstrap_auc_ci(labels, np.asarray(scores, np.float64).ravel(), replicates=replicates, seed=seed)
    return [float(low), float(high)]


def permuted_labels(labels, seed):
    """The training labels of the data randomization test: `labels` shuffled by `seed` (the
    same prevalence, no relation left to the images)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), 1801])).permutation(np.asarray(labels))


# one traced inference function per model object, reused by every validation of a training run
_FORWARD = weakref.WeakKeyDictionary()


def forward_fn(model):
    """`model(x, training=False)` as one `tf.function` for any batch size. Called eagerly, Keras
    runs every layer through Python, and a small model's validation and training-fit checks then
    take a large share of its training; traced once, a batch costs a fraction of that."""
    import tensorflow as tf

    fn = _FORWARD.get(model)
    if fn is None:
        # the pipeline's float images, cast to what the model takes (as a call converts them)
        spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)
        dtype = model.inputs[0].dtype
        ref = weakref.ref(model)      # the function must not keep its dictionary key alive
        fn = _FORWARD[model] = tf.function(lambda x: ref()(tf.cast(x, dtype), training=False),
                                           input_signature=[spec])
    return fn


def predict_split(model, data_dir, split, *, batch_size=32, image_size=0):
    """(labels, scores) of every image of `split`, in manifest order."""
    from ..data.pipeline import make_dataset

    ds = make_dataset(data_dir, split, batch_size=batch_size, image_size=image_size, shuffle=False,
                      with_masks=False)
    forward = forward_fn(model)
    labels, scores = [], []
    for x, y in ds:
        scores.append(np.asarray(forward(x)).ravel())
        labels.append(y.numpy())
    return np.concatenate(labels), np.concatenate(scores)


@register_task
class ClassificationTask(Task):
    """The classifier of `cxrsal train`; the baselines (`cxrsal.baselines`) bring their own tasks
    and share the loop, checkpoints, resume and run card."""

    name = CLASSIFICATION
    monitor, mode = "val_auc", "max"
    multi_worker = True       # validation calls the model on batches (`predict_split`)

    def __init__(self, cfg, data_dir):
        super().__init__(cfg, data_dir)
        self.permute = cfg.train.permute_labels
        self.labels = None
        if self.permute >= 0:
            # the data randomization test: the best epoch is the one that fits the permuted
            # training labels best (validation AUC means nothing for such a model)
            from ..data.pipeline import PreparedSplit

            self.monitor = "train_auc"
            self.labels = permuted_labels(PreparedSplit(data_dir, "train").labels, self.permute)

    def describe(self):
        out = {"arch": self.cfg.model.arch, "head": self.cfg.model.head, "options": to_dict(self.cfg)["model"]}
        if self.permute >= 0:
            out["label_permuted"] = {"seed": self.permute, "fit_auc": self.cfg.train.fit_auc}
        return out

    def fitted(self, scores):
        """A permuted-label model stops once it fits its labels (`train.fit_auc`)."""
        return self.permute >= 0 and scores.get("train_auc", 0.0) >= self.cfg.train.fit_auc

    def build(self, size):
        import keras

        from ..models import build_model

        m = self.cfg.model
        model = build_model(m.arch, m.head, (size, size, 1), m.weights, output_stride=m.output_stride, width=m.width,
                            **m.head_options())
        model.compile(optimizer=keras.optimizers.Adam(self.cfg.train.lr), loss=keras.losses.BinaryCrossentropy(),
                      metrics=[keras.metrics.AUC(name="auc")])
        return model

    def train_data(self, size, epoch):
        from ..data.pipeline import dataset_from_config

        return dataset_from_config(self.data_dir, "train", self.cfg.pipeline, image_size=size, start_epoch=epoch,
                                   advance=False, with_masks=False, repeat=bool(self.cfg.train.steps_per_epoch),
                                   labels=self.labels)

    def validate(self, model, size):
        labels, scores = predict_split(model, self.data_dir, "val", batch_size=self.cfg.pipeline.batch_size,
                                       image_size=size)
        out = {"val_auc": auc_score(labels, scores)}
        if self.labels is not None:     # how well it fits the labels it learns (manifest order)
            _, train_scores = predict_split(model, self.data_dir, "train", batch_size=self.cfg.pipeline.batch_size,
                                            image_size=size)
            out["train_auc"] = auc_score(self.labels, train_scores)
        return out

    def test(self, model, size, out):
        labels, scores = predict_split(model, self.data_dir, "test", batch_size=self.cfg.pipeline.batch_size,
                                       image_size=size)
        out = {"test_auc": auc_score(labels, scores), "test_auc_ci": auc_interval(labels, scores)}
        if self.labels is not None:
            _, train_scores = predict_split(model, self.data_dir, "train", batch_size=self.cfg.pipeline.batch_size,
                                            image_size=size)
            out["train_auc_permuted"] = auc_score(self.labels, train_scores)
        return out


def evaluate(run_dir, split="test", which="best", data_dir=None, log=print):
    """Re-compute the AUC of a trained run on a split of its (or another prepared) data set."""
    run = Run(run_dir).expect(CLASSIFICATION)
    model = run.model(which)
    # its own data: the manifest it recorded; another prepared set: as given
    data_dir = data_dir or run.checked_data()
    labels, scores = predict_split(model, data_dir, split, batch_size=run.config.pipeline.batch_size,
                                   image_size=model.input_shape[1])
    auc = auc_score(labels, scores)
    ci = auc_interval(labels, scores)
    log(f"{split} AUC {auc:.4f} [95% CI {ci[0]:.4f}, {ci[1]:.4f}] ({len(labels)} images, {int(labels.sum())} "
        f"positive; {which} checkpoint)")
    return {"split": split, "auc": auc, "auc_ci": ci, "n": int(len(labels)), "positives": int(labels.sum()), "checkpoint": which}
