"""Save / load inversion results as plain files.

DIR/latents.npz     one entry per image name: z [z_dim] (space 'z') or ws [num_ws, w_dim] ('w', 'w+')
DIR/noise.npz       (only when noise maps were optimised) '<name>/<layer>': [r, r]
DIR/inversion.json  space, truncation, names (in order), the settings and the checkpoint used
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from alignjax.errors import InputError, MissingEntryError, MissingFileError
from alignjax.invert.project import Latents


def save_latents(outdir, names: Sequence[str], latents: Latents, meta: dict | None = None) -> Path:
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    names = list(names)
    if len(set(names)) != len(names):
        raise InputError('image names must be unique')
    code = np.asarray(latents.code, np.float32)
    _atomic_npz(outdir / 'latents.npz', {n: code[i] for i, n in enumerate(names)})
    if latents.noise is not None:
        _atomic_npz(
            outdir / 'noise.npz',
            {f'{n}/{k}': np.asarray(v[i], np.float32) for k, v in latents.noise.items() for i, n in enumerate(names)},
        )
    elif (outdir / 'noise.npz').exists():
        (outdir / 'noise.npz').unlink()
    info = dict(meta or {})
    info.update(
        space=latents.space,
        truncation_psi=latents.truncation_psi,
        truncation_cutoff=latents.truncation_cutoff,
        names=names,
        noise_layers=None if latents.noise is None else list(latents.noise),
    )
    if latents.c is not None:
        info['c'] = np.asarray(latents.c).tolist()
    tmp = outdir / '.inversion.json.tmp'
    tmp.write_text(json.dumps(info, indent=1, ensure_ascii=False), encoding='utf-8')
    os.replace(tmp, outdir / 'inversion.json')
    return outdir


def _atomic_npz(path: Path, arrays: dict):
    tmp = path.with_name(f'.{path.stem}.tmp.npz')
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz file (never unpickling); InputError naming the file when it cannot be read."""
    try:
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise InputError(f'{path}: not a readable .npz file ({type(e).__name__}: {e})') from None


def load_latents(path, names: Sequence[str] | None = None) -> tuple[list[str], Latents]:
    """(names, Latents) from an inversion folder (or its latents.npz). `names` selects / orders entries."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(
            f'{path}: no such inversion folder (give a folder written by invert.py, with latents.npz)'
        )
    outdir = path if path.is_dir() else path.parent
    if path.is_dir() and not (outdir / 'latents.npz').is_file():
        raise MissingFileError(f'{path} is not an inversion folder: it has no latents.npz (written by invert.py)')
    info_path = outdir / 'inversion.json'
    try:
        info = json.loads(info_path.read_text(encoding='utf-8')) if info_path.exists() else {}
    except ValueError as e:
        raise InputError(f'{info_path}: not valid JSON ({e})') from None
    z = _read_npz(outdir / 'latents.npz')
    order = list(info.get('names') or z)
    names = list(names) if names is not None else order
    missing = [n for n in names if n not in z]
    if missing:
        raise MissingEntryError(f'{outdir}/latents.npz has no entries {missing[:5]} (has {list(z)[:5]}...)')
    code = np.stack([z[n] for n in names])
    space = info.get('space') or ('z' if code.ndim == 2 else 'w+')
    noise = None
    if (outdir / 'noise.npz').exists():
        zn = _read_npz(outdir / 'noise.npz')
        layers = info.get('noise_layers') or sorted({k.split('/', 1)[1] for k in zn})
        absent = [f'{n}/{k}' for n in names for k in layers if f'{n}/{k}' not in zn]
        if absent:
            raise MissingEntryError(f'{outdir}/noise.npz has no entries {absent[:5]} (has {list(zn)[:5]}...)')
        noise = {k: np.stack([zn[f'{n}/{k}'] for n in names]) for k in layers}
    c = None
    if info.get('c') is not None:
        allc = np.asarray(info['c'], np.float32)
        c = allc[[order.index(n) for n in names]]
    return names, Latents(
        code=code,
        noise=noise,
        c=c,
        space=space,
        truncation_psi=float(info.get('truncation_psi', 1.0)),
        truncation_cutoff=info.get('truncation_cutoff'),
    )
