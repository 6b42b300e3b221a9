"""Overlays (cxrsal.saliency.overlay): the mask's outline drawn on the image, checked against
scikit-image's boundaries."""

import numpy as np
from skimage.segmentation import find_boundaries

from cxrsal.saliency.overlay import overlay


def test_overlay_outline_is_the_masks_inner_boundary():
    mask = np.zeros((64, 64), bool)
    mask[10:30, 12:40] = True
    mask[30:50, 12:22] = True                 # an L: one concave corner
    mask[45:55, 45:58] = True                 # a second region
    rgb = overlay(np.zeros((64, 64)), np.zeros((64, 64)), mask)
    green = (rgb == (0, 255, 0)).all(-1)
    black = (rgb == 0).all(-1)
    assert (green | black).all()              # a black image, no map: only the outline is drawn
    # 64 px: a 1-pixel line on the mask's own border pixels (4-neighbour boundary)
    np.testing.assert_array_equal(green, find_boundaries(mask, connectivity=1, mode="inner"))
