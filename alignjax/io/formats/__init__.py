"""StyleGAN2 checkpoint formats -> one canonical raw form (NVlabs stylegan2-ada-pytorch state dicts).

Readers (no PyTorch / TensorFlow needed; every pickle is loaded with the restricted unpickler and the
globals its format needs), one module per format:

* :func:`read_nvlabs_pkl`     (``nvlabs.py``)     -- stylegan2-ada-pytorch network pickles ``{G, D, G_ema, ...}``
* :func:`read_rosinality_pt`  (``rosinality.py``) -- rosinality/stylegan2-pytorch ``torch.save`` checkpoints
* :func:`read_tf_pkl`         (``tf.py``)         -- NVlabs TensorFlow StyleGAN2 / ADA pickles ``(G, D, Gs)``
* :func:`read_raw`            (``detect.py``)     -- dispatch on :func:`detect_format`

Each returns a :class:`RawCheckpoint` whose ``nets`` hold flat state dicts with exactly the names,
shapes and layouts that ``G.state_dict()`` / ``D.state_dict()`` of stylegan2-ada-pytorch have (the schema in
``schema.py``, derived from the architecture table `alignjax.nn.arch`), and whose ``config`` is inferred from
the tensors (plus constructor kwargs where the file stores them).

Writer: :func:`write_rosinality_pt` (inverse of :func:`read_rosinality_pt`).
"""

from alignjax.io.formats.common import ORBAX_MARKER, RawCheckpoint, default_resample_filter
from alignjax.io.formats.detect import detect_format, is_training_snapshot, read_raw
from alignjax.io.formats.infer import infer_config
from alignjax.io.formats.nvlabs import read_nvlabs_pkl
from alignjax.io.formats.rosinality import read_rosinality_pt, write_rosinality_pt
from alignjax.io.formats.schema import d_schema, expected_shapes, g_schema
from alignjax.io.formats.tf import read_tf_pkl

__all__ = [
    'ORBAX_MARKER',
    'RawCheckpoint',
    'd_schema',
    'default_resample_filter',
    'detect_format',
    'expected_shapes',
    'g_schema',
    'infer_config',
    'is_training_snapshot',
    'read_nvlabs_pkl',
    'read_raw',
    'read_rosinality_pt',
    'read_tf_pkl',
    'write_rosinality_pt',
]
