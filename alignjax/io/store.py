"""Our own checkpoint format: a directory with `alignjax_config.json` (configs, notes) and an orbax
`state/` tree {'G': variables, 'G_ema': variables, 'D': variables}. Writes are atomic: everything goes to a
temporary sibling directory that is renamed into place, so a crash leaves the previous checkpoint intact."""
from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import jax
import numpy as np

CONFIG_NAME = 'alignjax_config.json'
FORMAT_VERSION = 1


def _jsonable(obj):
    try:
        json.dumps(obj)
        return obj
    except TypeError:
        if isinstance(obj, dict):
            return {str(k): _jsonable(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [_jsonable(v) for v in obj]
        if isinstance(obj, (np.generic, np.ndarray)):
            return np.asarray(obj).tolist()
        return repr(obj)


def save_checkpoint(path, ck) -> Path:
    """Write `ck` (an `alignjax.Checkpoint`) to directory `path` atomically; returns the path."""
    import orbax.checkpoint as ocp
    path = Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    tmp = path.parent / f'.{path.name}.tmp-{tag}'
    state = jax.tree_util.tree_map(lambda a: np.asarray(a), ck.nets)
    try:
        with ocp.StandardCheckpointer() as cp:
            cp.save(tmp / 'state', state)
            cp.wait_until_finished()
        meta = dict(format_version=FORMAT_VERSION, nets=sorted(ck.nets), g_config=ck.g_config.to_dict(),
                    d_config=None if ck.d_config is None else ck.d_config.to_dict(), source=str(ck.source),
                    source_format=ck.format, notes=list(ck.notes), extra=_jsonable(dict(ck.extra)))
        (tmp / CONFIG_NAME).write_text(json.dumps(meta, indent=1))
        if path.exists():
            old = path.parent / f'.{path.name}.old-{tag}'
            os.rename(path, old)
            os.rename(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def load_store(path):
    """Read a directory written by `save_checkpoint` into an `alignjax.Checkpoint`."""
    import orbax.checkpoint as ocp
    from alignjax.io.safe_pickle import CheckpointError
    from alignjax.model import Checkpoint
    from alignjax.nn.networks import DiscriminatorConfig, GeneratorConfig
    path = Path(path).absolute()
    try:
        meta = json.loads((path / CONFIG_NAME).read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f'{path}: unreadable {CONFIG_NAME}: {e}') from None
    if meta.get('format_version') != FORMAT_VERSION:
        raise CheckpointError(f'{path}: unsupported store format_version {meta.get("format_version")!r}')
    try:
        with ocp.StandardCheckpointer() as cp:
            state = cp.restore(path / 'state')
    except Exception as e:  # orbax raises many types; name the file
        raise CheckpointError(f'{path}/state: cannot restore the orbax tree ({type(e).__name__}: {e})') from None
    state = jax.tree_util.tree_map(np.asarray, state)
    missing = set(meta['nets']) - set(state)
    if missing:
        raise CheckpointError(f'{path}: networks {sorted(missing)} listed in {CONFIG_NAME} are not in state/')
    g = GeneratorConfig(**meta['g_config'])
    d = None if meta['d_config'] is None else DiscriminatorConfig(**meta['d_config'])
    return Checkpoint(g, d, {k: state[k] for k in meta['nets']}, source=str(path), format='orbax',
                      notes=list(meta.get('notes', [])), extra=dict(meta.get('extra', {})))
