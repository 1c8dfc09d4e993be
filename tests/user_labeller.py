"""A user's own labelling function for tests of `alignjax-report --labeller` (the Evaluator contract: images
[N, H, W, 3] -> {'factors': [N, 18], ...}): mean colour of six horizontal bands, 6 x 3 = 18 numbers."""

import numpy as np


def band_colours(images):
    x = np.asarray(images, np.float32)
    x = x / 255.0 if x.max() > 1.5 else (x + 1) / 2
    bands = np.array_split(x, 6, axis=1)
    return {'factors': np.concatenate([b.mean(axis=(1, 2)) for b in bands], axis=1)}


def wrong_shape(images):
    return {'factors': np.zeros((len(images), 3), np.float32)}


NOT_CALLABLE = 3
