"""Checkpoint I/O: torch-free readers/writers for StyleGAN2 checkpoint formats."""

from .formats import (
    RawCheckpoint,
    detect_format,
    read_nvlabs_pkl,
    read_raw,
    read_rosinality_pt,
    read_tf_pkl,
    write_rosinality_pt,
)
from .safe_pickle import CheckpointError, load_pickle
from .torch_file import load_torch, save_torch

__all__ = [
    "CheckpointError",
    "RawCheckpoint",
    "detect_format",
    "load_pickle",
    "load_torch",
    "read_nvlabs_pkl",
    "read_raw",
    "read_rosinality_pt",
    "read_tf_pkl",
    "save_torch",
    "write_rosinality_pt",
]
