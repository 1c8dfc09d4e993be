"""Checkpoint I/O: torch-free readers/writers for StyleGAN2 checkpoint formats.

checkpoint.py   Checkpoint, load_checkpoint, config inference (the entry point; `alignjax.load_checkpoint`)
formats/        one module per file format -> canonical NVlabs state dicts (+ schema, detection)
convert.py      NVlabs state dicts <-> our flax variables
store.py        our orbax directory format; training snapshots
export.py       rosinality export
safe_pickle.py  the allow-list unpickler (each format passes its globals)
torch_file.py, torch_pickle.py, torch_save.py   torch.save files without torch
"""

from alignjax.errors import CheckpointError
from alignjax.io.formats import (
    RawCheckpoint,
    detect_format,
    read_nvlabs_pkl,
    read_raw,
    read_rosinality_pt,
    read_tf_pkl,
    write_rosinality_pt,
)
from alignjax.io.safe_pickle import load_pickle
from alignjax.io.torch_file import load_torch, save_torch

__all__ = [
    'CheckpointError',
    'RawCheckpoint',
    'detect_format',
    'load_pickle',
    'load_torch',
    'read_nvlabs_pkl',
    'read_raw',
    'read_rosinality_pt',
    'read_tf_pkl',
    'save_torch',
    'write_rosinality_pt',
]
