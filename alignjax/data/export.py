"""Write any dataset spec as an NVlabs ``dataset_tool.py``-layout zip.

    python -m alignjax.data.export --source proc:toons?seed=1 --n 5000 --res 256 --out toons256.zip

The archive holds ``00000/img00000000.png`` ... (1000 images per folder) and a
``dataset.json`` with ``{"labels": [[name, label], ...]}`` or ``{"labels":
null}``, so StyleGAN2-ADA/StyleGAN3 (and :func:`alignjax.data.make_dataset`)
train on it directly. Labels: ``--labels source`` (default) writes the
dataset's own labels (one-hot ones as class integers), ``--labels factors``
writes the procedural factor vector, ``--labels none`` writes null.
``--annotations`` adds ``annotations.npz`` (factors, landmarks, visibility,
masks, names) for ``proc:`` sources, outside the NVlabs layout but harmless.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import zipfile

import numpy as np
from PIL import Image

from alignjax.data.sources import ImageDataset, _ProceduralBackend, make_dataset


def _png(img: np.ndarray, compress_level: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="png", compress_level=compress_level, optimize=False)
    return buf.getvalue()


def _name(i: int) -> str:
    return f"{i // 1000:05d}/img{i:08d}.png"


def export(
    source: str | ImageDataset,
    out: str,
    *,
    n: int | None = None,
    resolution: int = 256,
    labels: str = "source",
    annotations: bool = False,
    compress_level: int = 0,
    verbose: bool = True,
) -> dict:
    """Write ``n`` images of ``source`` to the zip ``out``; returns a summary dict."""
    if labels not in ("source", "factors", "none"):
        raise ValueError(f"labels must be 'source', 'factors' or 'none', got {labels!r}")
    ds = source if isinstance(source, ImageDataset) else make_dataset(source, resolution, in_memory=False)
    proc = isinstance(ds._backend, _ProceduralBackend)
    if (labels == "factors" or annotations) and not proc:
        raise ValueError("--labels factors and --annotations need a proc: source")
    n = len(ds) if n is None else int(n)
    if not 0 < n <= len(ds):
        raise ValueError(f"n must be in [1, {len(ds)}] for {ds.spec!r}, got {n}")
    t0 = time.perf_counter()
    label_rows = []
    ann = {k: [] for k in ("factors", "landmarks", "visible", "mask")}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        step = 256 if proc else 1
        for s in range(0, n, step):
            idx = np.arange(s, min(n, s + step))
            if proc:
                raw = np.array([ds.raw_index(i) for i in idx])
                r = ds._backend.render(raw, ds.resolution)
                images = r["image"]
                if annotations:
                    for k in ann:
                        ann[k].append(r[k])
                facs = r["factors"]
            else:
                items = [ds[int(i)] for i in idx]
                images = [it["image"] for it in items]
            for j, i in enumerate(idx):
                name = _name(int(i))
                zf.writestr(name, _png(images[j], compress_level))
                if labels == "factors":
                    label_rows.append([name, [round(float(x), 6) for x in facs[j]]])
                elif labels == "source" and ds.c_dim:
                    lab = items[j]["label"]
                    is_onehot = np.all((lab == 0) | (lab == 1)) and lab.sum() == 1
                    label_rows.append([name, int(lab.argmax()) if is_onehot else [float(x) for x in lab]])
            if verbose and (s // step) % max(1, 2000 // step) == 0:
                print(f"\r{min(n, s + step)}/{n}", end="", file=sys.stderr, flush=True)
        meta = {"labels": label_rows if label_rows else None}
        zf.writestr("dataset.json", json.dumps(meta))
        if annotations:
            from alignjax.data import procedural

            buf = io.BytesIO()
            dom = ds._backend.domain
            np.savez_compressed(
                buf,
                **{k: np.concatenate(v) for k, v in ann.items()},
                factor_names=np.array(procedural.FACTOR_NAMES),
                landmark_names=np.array(procedural.LANDMARK_NAMES[dom]),
                mask_classes=np.array(procedural.MASK_CLASSES[dom]),
            )
            zf.writestr("annotations.npz", buf.getvalue())
    dt = time.perf_counter() - t0
    if verbose:
        print(f"\rwrote {n} images ({ds.resolution}x{ds.resolution}) to {out} in {dt:.1f}s", file=sys.stderr)
    return {"n": n, "resolution": ds.resolution, "seconds": dt, "out": out}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", required=True, help="dataset spec, e.g. proc:faces?seed=0, folder:/x, zip:/y.zip")
    p.add_argument("--n", type=int, default=None, help="number of images (default: all)")
    p.add_argument("--res", type=int, default=256, help="output resolution")
    p.add_argument("--out", required=True, help="output .zip")
    p.add_argument("--labels", choices=("source", "factors", "none"), default="source")
    p.add_argument("--annotations", action="store_true", help="add annotations.npz (proc: sources)")
    p.add_argument("--compress-level", type=int, default=0, help="PNG zlib level (NVlabs uses 0)")
    a = p.parse_args(argv)
    export(a.source, a.out, n=a.n, resolution=a.res, labels=a.labels, annotations=a.annotations,
           compress_level=a.compress_level)


if __name__ == "__main__":
    main()
