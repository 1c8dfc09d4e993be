"""Which format a checkpoint is, from its content (never its name), and :func:`read_raw` to read any of them."""

from __future__ import annotations

import io
import os
import pickletools
import zipfile
from typing import Any

from alignjax.errors import CheckpointError
from alignjax.io.formats.common import NET_NAMES, ORBAX_MARKER, RawCheckpoint
from alignjax.io.formats.nvlabs import NVLABS_GLOBALS, NVLABS_TOP_KEYS, read_nvlabs_pkl
from alignjax.io.formats.rosinality import read_rosinality_pt
from alignjax.io.formats.tf import TF_GLOBALS, TFNetwork, read_tf_pkl
from alignjax.io.safe_pickle import corrupt_error
from alignjax.io.torch_file import is_torch_legacy, is_torch_zip, load_torch

# the items of a training snapshot (alignjax.train.loop saves state, data and meta)
SNAPSHOT_ITEMS = ('state', 'meta')


def _sniff_pickle(head: bytes) -> str | None:
    """Guess nvlabs / tf from the first opcodes of a pickle (no objects are built)."""
    strings: list[str] = []
    first = None
    depth_dict = False
    try:
        for i, (op, arg, _pos) in enumerate(pickletools.genops(io.BytesIO(head))):
            if i > 64:
                break
            name = op.name
            if name in ('PROTO', 'FRAME', 'MEMOIZE', 'BINPUT', 'LONG_BINPUT', 'PUT'):
                continue
            if first is None and name != 'MARK':
                first = name
                if (
                    name == 'GLOBAL'
                    and isinstance(arg, str)
                    and arg.replace(' ', '.') == 'dnnlib.tflib.network.Network'
                ):
                    return 'tf'
                depth_dict = name in ('EMPTY_DICT', 'DICT')
            if name in ('SHORT_BINUNICODE', 'BINUNICODE', 'UNICODE', 'BINUNICODE8'):
                strings.append(arg)
                if strings[-2:] == ['dnnlib.tflib.network', 'Network'] and len(strings) == 2:
                    return 'tf'
                if depth_dict and len(strings) == 1 and arg in NVLABS_TOP_KEYS:
                    return 'nvlabs'
    except Exception:  # truncated head / not a pickle
        return None
    return None


def is_training_snapshot(path: str | os.PathLike) -> bool:
    """A step directory of a training run's orbax CheckpointManager (``checkpoints/<step>/{state,meta}``)."""
    return all(os.path.isdir(os.path.join(path, item)) for item in SNAPSHOT_ITEMS)


def detect_format(path: str | os.PathLike) -> str:
    """'nvlabs' | 'rosinality' | 'tf' | 'orbax' | 'snapshot' from the file's content (never from its name)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, ORBAX_MARKER)):
            return 'orbax'
        if is_training_snapshot(path):
            return 'snapshot'
        raise CheckpointError(
            f"{path}: directory without '{ORBAX_MARKER}' is not an alignjax checkpoint store "
            '(nor a training snapshot checkpoints/<step> with state/ and meta/)'
        )
    try:
        size = os.path.getsize(path)
        with open(path, 'rb') as f:
            head = f.read(1 << 16)
    except OSError as exc:
        raise CheckpointError(f'{path}: cannot read checkpoint ({exc})') from exc
    if size == 0:
        raise CheckpointError(f'{path} is empty (0 bytes): truncated or corrupt')
    if is_torch_zip(head):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise corrupt_error(path, exc) from exc
        if not any(n.endswith('/data.pkl') and n.count('/') == 1 for n in names):
            raise CheckpointError(
                f"{path}: zip file without a torch 'data.pkl' record is not a known checkpoint format"
            )
        return 'rosinality'
    if is_torch_legacy(head):
        return 'rosinality'
    guess = _sniff_pickle(head)
    if guess:
        return guess
    if not head.startswith(b'\x80'):
        raise CheckpointError(f'{path}: unknown checkpoint format (not a pickle, torch.save file or orbax store)')
    # an unusual pickle layout: decide from the restricted load of the whole object
    return _classify(load_torch(path, {**NVLABS_GLOBALS, **TF_GLOBALS}), path)


def _classify(obj: Any, path: str) -> str:
    if isinstance(obj, dict) and any(k in obj for k in NET_NAMES):
        return 'nvlabs'
    if isinstance(obj, tuple) and len(obj) == 3 and all(isinstance(o, TFNetwork) for o in obj):
        return 'tf'
    if isinstance(obj, dict) and ('g_ema' in obj or 'g' in obj or 'd' in obj):
        return 'rosinality'
    raise CheckpointError(f'{path}: unknown checkpoint format (top-level object is {type(obj).__name__})')


def read_raw(path: str | os.PathLike, format: str | None = None) -> RawCheckpoint:
    """Read any supported checkpoint into a :class:`RawCheckpoint`."""
    path = os.fspath(path)
    fmt = format or detect_format(path)
    if fmt == 'nvlabs':
        return read_nvlabs_pkl(path)
    if fmt == 'rosinality':
        return read_rosinality_pt(path)
    if fmt == 'tf':
        return read_tf_pkl(path)
    if fmt in ('orbax', 'snapshot'):
        raise CheckpointError(
            f'{path}: is an alignjax orbax directory; load it with alignjax.load_checkpoint, not read_raw'
        )
    raise CheckpointError(f'{path}: unknown checkpoint format {fmt!r}')
