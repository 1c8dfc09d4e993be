"""Write any dataset spec as an NVlabs ``dataset_tool.py``-layout zip.

    alignjax-export-data --source 'proc:toons?seed=1' --max-images 5000 --resolution 256 --out toons256.zip
    python -m alignjax.data.export ...     # the same command line (alignjax/cli/export_data.py)

The archive holds ``00000/img00000000.png`` ... (1000 images per folder) and a
``dataset.json`` with ``{"labels": [[name, label], ...]}`` or ``{"labels":
null}``, so StyleGAN2-ADA/StyleGAN3 (and :func:`alignjax.data.make_dataset`)
train on it directly. Labels: ``--labels source`` (default) writes the
dataset's own labels (one-hot ones as class integers), ``--labels factors``
writes the procedural factor vector, ``--labels none`` writes null.
``--annotations`` adds ``annotations.npz`` (factors, landmarks, visibility,
masks, names) for ``proc:`` sources, outside the NVlabs layout but harmless.
Unreadable images stop the export (naming the file) unless ``--skip-bad``.
(``--n`` / ``--res`` are deprecated spellings of ``--max-images`` / ``--resolution``.)
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import time
import zipfile

import numpy as np
from PIL import Image

from alignjax.data import procedural
from alignjax.data._image import BadImageError, EmptyDatasetError
from alignjax.data.sources import ImageDataset, _ProceduralBackend, make_dataset


def _png(img: np.ndarray, compress_level: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format='png', compress_level=compress_level, optimize=False)
    return buf.getvalue()


def _name(i: int) -> str:
    return f'{i // 1000:05d}/img{i:08d}.png'


SKIP_HINT = 'pass --skip-bad to leave bad files out'


def _progress(done: int, n: int, tty: bool) -> None:
    if tty:
        print(f'\r{done}/{n}', end='', file=sys.stderr, flush=True)
    else:
        print(f'{done}/{n}', file=sys.stderr, flush=True)


def export(
    source: str | ImageDataset,
    out: str,
    *,
    n: int | None = None,
    resolution: int = 256,
    labels: str = 'source',
    annotations: bool = False,
    compress_level: int = 0,
    verbose: bool = True,
    bad_file_policy: str = 'fail',
) -> dict:
    """Write ``n`` images of ``source`` to the zip ``out``; returns a summary dict.

    The archive is written to a temporary sibling and renamed into place, so a failure leaves no partial zip.
    ``bad_file_policy='skip'`` leaves unreadable files out (the archive is numbered without gaps and holds
    ``n`` images while enough good ones remain); ``'fail'`` stops at the first one, naming it.
    """
    if labels not in ('source', 'factors', 'none'):
        raise ValueError(f"labels must be 'source', 'factors' or 'none', got {labels!r}")
    if isinstance(source, ImageDataset):
        ds = source
    else:
        ds = make_dataset(source, resolution, in_memory=False, bad_file_policy=bad_file_policy)
    proc = isinstance(ds._backend, _ProceduralBackend)
    if (labels == 'factors' or annotations) and not proc:
        raise ValueError('--labels factors and --annotations need a proc: source')
    n_asked = n
    if n is not None and int(n) < 1:
        raise ValueError(f'the number of images must be >= 1, got {n}')
    n = len(ds) if n is None else min(int(n), len(ds))
    t0 = time.perf_counter()
    tty = sys.stderr.isatty()
    label_rows = []
    ann = {k: [] for k in ('factors', 'landmarks', 'visible', 'mask')}
    out_dir = os.path.dirname(os.path.abspath(out))
    fd, tmp = tempfile.mkstemp(prefix=f'.{os.path.basename(out)}.', suffix='.tmp', dir=out_dir)
    os.close(fd)
    skipped = []
    written = 0
    try:
        with zipfile.ZipFile(tmp, 'w', compression=zipfile.ZIP_STORED) as zf:
            if proc:
                step = 256
                for s in range(0, n, step):
                    idx = np.arange(s, min(n, s + step))
                    raw = np.array([ds.raw_index(i) for i in idx])
                    r = ds._backend.render(raw, ds.resolution)
                    if annotations:
                        for k in ann:
                            ann[k].append(r[k])
                    for j, i in enumerate(idx):
                        name = _name(int(i))
                        zf.writestr(name, _png(r['image'][j], compress_level))
                        if labels == 'factors':
                            label_rows.append([name, [round(float(x), 6) for x in r['factors'][j]]])
                    written = int(idx[-1]) + 1
                    if verbose and ((s // step) % max(1, 2000 // step) == 0 or written == n):
                        _progress(written, n, tty)
            else:
                for k in range(len(ds)):
                    if written == n:
                        break
                    kk, flip = ds._split(k)
                    try:
                        image, label = ds._backend.load(int(ds._raw_idx[kk]), ds.resolution)
                        if flip:
                            image = np.ascontiguousarray(image[:, ::-1])
                    except BadImageError as e:
                        if ds.bad_file_policy == 'fail':
                            raise e.with_hint(SKIP_HINT) from None
                        skipped.append(e.path)
                        if verbose:
                            print(f'skipping {e}', file=sys.stderr, flush=True)
                        continue
                    name = _name(written)
                    zf.writestr(name, _png(image, compress_level))
                    if labels == 'source' and ds.c_dim:
                        lab = np.asarray(label)
                        is_onehot = np.all((lab == 0) | (lab == 1)) and lab.sum() == 1
                        label_rows.append([name, int(lab.argmax()) if is_onehot else [float(x) for x in lab]])
                    written += 1
                    if verbose and (written % 2000 == 0 or written == n):
                        _progress(written, n, tty)
                if written == 0:
                    raise EmptyDatasetError(f'{ds.spec!r}: none of the images could be read')
            if verbose and tty:
                print(file=sys.stderr)
            meta = {'labels': label_rows if label_rows else None}
            zf.writestr('dataset.json', json.dumps(meta))
            if annotations:
                buf = io.BytesIO()
                dom = ds._backend.domain
                np.savez_compressed(
                    buf,
                    **{k: np.concatenate(v) for k, v in ann.items()},
                    factor_names=np.array(procedural.FACTOR_NAMES),
                    landmark_names=np.array(procedural.LANDMARK_NAMES[dom]),
                    mask_classes=np.array(procedural.MASK_CLASSES[dom]),
                )
                zf.writestr('annotations.npz', buf.getvalue())
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    skipped += [b for b in ds.bad_files if b not in skipped]
    dt = time.perf_counter() - t0
    if verbose:
        extra = f', {len(skipped)} bad file(s) skipped' if skipped else ''
        asked = n if n_asked is None else n_asked
        short = f' (only {written} of the {asked} asked for)' if written < asked else ''
        print(
            f'wrote {written} images ({ds.resolution}x{ds.resolution}) to {out} in {dt:.1f}s{short}{extra}',
            file=sys.stderr,
        )
    return {'n': written, 'resolution': ds.resolution, 'seconds': dt, 'out': out, 'skipped': skipped}


if __name__ == '__main__':  # `python -m alignjax.data.export` (the command line: alignjax.cli.export_data)
    from alignjax.cli.export_data import main

    raise SystemExit(main())
