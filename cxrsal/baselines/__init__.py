"""High baselines of [A]: a U-Net segmentation network and a RetinaNet detector, trained with
the classifiers' loop (`cxrsal train-baseline`) and written as maps/boxes `cxrsal score` reads."""

from . import losses  # noqa: F401  (registers FocalDiceLoss for loading checkpoints)
from . import retinanet, unet  # noqa: F401  (register their tasks in cxrsal.runs.TASKS)
