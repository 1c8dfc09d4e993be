"""Our own checkpoint format: a directory with `alignjax_config.json` (configs, notes) and an orbax
`state/` tree {'G': variables, 'G_ema': variables, 'D': variables}. Writes are atomic: everything goes to a
temporary sibling directory that is renamed into place, so a crash leaves the previous checkpoint intact.
Also reads the networks of a training snapshot (`read_snapshot`)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from pathlib import Path

import jax
import numpy as np

from alignjax.errors import CheckpointError
from alignjax.nn.networks import DiscriminatorConfig, GeneratorConfig

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


@contextlib.contextmanager
def atomic_directory(path):
    """Yield a fresh temporary sibling path (not yet created) to fill; when the block succeeds it replaces
    directory `path` by renames (the old one is removed only after), and on error it is removed and `path`
    is untouched. So a crash never leaves a half-written `path`."""
    path = Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    tmp = path.parent / f'.{path.name}.tmp-{tag}'
    try:
        yield tmp
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


def save_checkpoint(path, ck) -> Path:
    """Write `ck` (an `alignjax.Checkpoint`) to directory `path` atomically; returns the path."""
    import orbax.checkpoint as ocp  # slow to import (~1 s); only directory checkpoints need it

    path = Path(path).absolute()
    state = jax.tree_util.tree_map(lambda a: np.asarray(a), ck.nets)
    with atomic_directory(path) as tmp:
        with ocp.StandardCheckpointer() as cp:
            cp.save(tmp / 'state', state)
            cp.wait_until_finished()
        meta = dict(
            format_version=FORMAT_VERSION,
            nets=sorted(ck.nets),
            g_config=ck.g_config.to_dict(),
            d_config=None if ck.d_config is None else ck.d_config.to_dict(),
            source=str(ck.source),
            source_format=ck.format,
            notes=list(ck.notes),
            extra=_jsonable(dict(ck.extra)),
        )
        (tmp / CONFIG_NAME).write_text(json.dumps(meta, indent=1))
    return path


def read_store(path) -> dict:
    """Read a directory written by `save_checkpoint`: {'g_config', 'd_config', 'nets', 'notes', 'extra'}
    (configs as `GeneratorConfig` / `DiscriminatorConfig`, nets as numpy variables)."""
    path = Path(path).absolute()
    try:
        meta = json.loads((path / CONFIG_NAME).read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f'{path}: unreadable {CONFIG_NAME}: {e}') from None
    if meta.get('format_version') != FORMAT_VERSION:
        raise CheckpointError(f'{path}: unsupported store format_version {meta.get("format_version")!r}')
    state = _restore(path / 'state')
    missing = set(meta['nets']) - set(state)
    if missing:
        raise CheckpointError(f'{path}: networks {sorted(missing)} listed in {CONFIG_NAME} are not in state/')
    return dict(
        g_config=GeneratorConfig(**meta['g_config']),
        d_config=_d_config(meta['d_config']),
        nets={k: state[k] for k in meta['nets']},
        notes=list(meta.get('notes', [])),
        extra=dict(meta.get('extra', {})),
    )


# A training snapshot (`alignjax.train.loop`): an orbax CheckpointManager step directory with the items
# state (a TrainState: g, g_ema, d, optimiser states, ...), data (iterator state) and meta (JSON incl. g_config,
# d_config). Read here with orbax alone, without the training code.
SNAPSHOT_NETS = {'G': 'g', 'G_ema': 'g_ema', 'D': 'd'}


def read_snapshot(path) -> dict:
    """G, G_ema and D of a training snapshot `runs/x/checkpoints/<step>`, as `read_store` returns them."""
    path = Path(path).absolute()
    meta_file = path / 'meta' / 'metadata'
    try:
        meta = json.loads(meta_file.read_text())
        g_cfg = GeneratorConfig(**meta['g_config'])
        d_cfg = _d_config(meta.get('d_config'))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(
            f'{meta_file}: not the metadata of a training snapshot ({type(e).__name__}: {e})'
        ) from None
    state = _restore(path / 'state')
    nets = {name: state[field] for name, field in SNAPSHOT_NETS.items() if isinstance(state.get(field), dict)}
    if 'G_ema' not in nets:
        raise CheckpointError(f'{path}/state: a training snapshot without g_ema (has {sorted(state)})')
    if d_cfg is None:
        nets.pop('D', None)
    extra = {k: meta[k] for k in ('config', 'dataset', 'resolution') if k in meta}
    if 'ada' in state and isinstance(state['ada'], dict) and 'p' in state['ada']:
        extra['augment_p'] = float(np.asarray(state['ada']['p']).reshape(-1)[0])
    for k in ('step', 'nimg'):
        if k in state:
            extra[k] = int(np.asarray(state[k]))
    return dict(g_config=g_cfg, d_config=d_cfg, nets=nets, notes=[f'training snapshot {path.name}'], extra=extra)


def _d_config(d) -> DiscriminatorConfig | None:
    return None if d is None else DiscriminatorConfig(**d)


def _restore(path: Path) -> dict:
    import orbax.checkpoint as ocp  # slow to import (~1 s); only directory checkpoints need it

    try:
        with ocp.StandardCheckpointer() as cp:
            state = cp.restore(path)
    except Exception as e:  # orbax raises many types; name the file
        raise CheckpointError(f'{path}: cannot restore the orbax tree ({type(e).__name__}: {e})') from None
    return jax.tree_util.tree_map(np.asarray, state)
