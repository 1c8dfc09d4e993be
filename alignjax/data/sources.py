"""Random-access image sources behind one dataset spec.

A *spec* names where the images live::

    folder:/data/ffhq            # a directory tree of images (any PIL format)
    zip:/data/ffhq-256x256.zip   # an NVlabs dataset_tool.py archive
    tfds:cifar10[:train]         # a registered TFDS dataset (ArrayRecord)
    proc:faces?seed=1&n=500      # the procedural aligned-domain benchmark

A bare path also works (directories are folders, ``*.zip`` files are zips).
Options go after ``?`` as ``key=value`` pairs joined by ``&``:

* folder / zip: ``labels=0`` ignores a ``dataset.json`` label file.
* tfds: ``data_dir=...``, ``image_key=image``, ``label_key=label`` (``none``
  for unconditional), ``download=1`` (off by default: nothing is fetched
  unless asked).
* proc: ``seed`` (default 0), ``n`` (default 70000), ``cond=1`` to use the
  normalised factor vector as the conditioning label.

:func:`make_dataset` turns a spec into an :class:`ImageDataset`: a grain
compatible random-access source (``len()``, ``ds[i] -> dict(image, label)``)
whose images are ``[R, R, 3]`` uint8, centre-cropped and Lanczos-resized to the
model resolution ``R``. Its behaviour follows NVlabs' ``training/dataset.py``:
``max_images`` keeps a fixed random subset (seed 0, sorted), ``xflip`` doubles
the dataset with mirrored copies (indices ``>= n`` are the mirrors), labels come
from ``dataset.json`` (integers become one-hot vectors).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import sys
import threading
import urllib.parse
import zipfile
from dataclasses import dataclass, field

import numpy as np

from alignjax.data import procedural
from alignjax.data._image import (
    IMAGE_EXTENSIONS,
    BadImageError,
    DatasetError,
    DatasetNotADirectoryError,
    DatasetNotFoundError,
    EmptyDatasetError,
    decode_image,
    describe_extensions,
    probe_image,
)

__all__ = [
    'DatasetSpec',
    'ImageDataset',
    'make_dataset',
    'parse_spec',
]

#: Above this many bytes of decoded images, ``in_memory=None`` streams.
IN_MEMORY_BYTES = 1 << 30
#: Procedural sources render on the fly unless they are at most this long.
IN_MEMORY_PROC_IMAGES = 5000

_POLICIES = ('fail', 'skip')
#: How a bad file under bad_file_policy='fail' says to go on (CLIs replace it with their own flag).
SKIP_HINT = "pass bad_file_policy='skip' (train.py: --config.data.bad_file_policy=skip) to skip bad files"


def _report(msg: str) -> None:
    print(f'[alignjax.data] {msg}', file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------
# Spec parsing


@dataclass(frozen=True)
class DatasetSpec:
    kind: str  # folder | zip | tfds | proc
    target: str  # path, tfds name, or procedural domain
    split: str | None = None
    options: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        s = f'{self.kind}:{self.target}'
        if self.split:
            s += f':{self.split}'
        if self.options:
            s += '?' + urllib.parse.urlencode(sorted(self.options.items()))
        return s


_KINDS = ('folder', 'zip', 'tfds', 'proc')


def parse_spec(spec: str) -> DatasetSpec:
    """Parse ``kind:target[:split][?k=v&...]`` (see the module docstring)."""
    if not isinstance(spec, str) or not spec:
        raise DatasetError(f'dataset spec must be a non-empty string, got {spec!r}')
    body, _, query = spec.partition('?')
    options = dict(urllib.parse.parse_qsl(query, keep_blank_values=True)) if query else {}
    kind, sep, rest = body.partition(':')
    if not sep or kind not in _KINDS:
        # A bare path: infer the kind.
        path = os.path.expanduser(body)
        if os.path.isdir(path):
            return DatasetSpec('folder', path, None, options)
        if path.lower().endswith('.zip'):
            return DatasetSpec('zip', path, None, options)
        raise DatasetError(
            f'cannot tell what kind of dataset {spec!r} is: use one of ' + ', '.join(f"'{k}:...'" for k in _KINDS)
        )
    if not rest:
        raise DatasetError(f'dataset spec {spec!r} names no {"path" if kind in ("folder", "zip") else "dataset"}')
    if kind in ('folder', 'zip'):
        return DatasetSpec(kind, os.path.expanduser(rest), None, options)
    if kind == 'tfds':
        name, _, split = rest.partition(':')
        return DatasetSpec(kind, name, split or 'train', options)
    return DatasetSpec(kind, rest, None, options)


def _flag(options: dict[str, str], key: str, default: bool) -> bool:
    v = options.get(key)
    if v is None:
        return default
    v = v.strip().lower()
    if v in ('1', 'true', 'yes', 'on', ''):
        return True
    if v in ('0', 'false', 'no', 'off'):
        return False
    raise DatasetError(f'option {key}={v!r} is not a boolean')


def _int_option(spec: DatasetSpec, key: str, default: int) -> int:
    v = spec.options.get(key)
    if v is None:
        return default
    try:
        return int(v)
    except ValueError:
        raise DatasetError(f'option {key}={v!r} of dataset {str(spec)!r} is not an integer') from None


def _check_options(spec: DatasetSpec, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(spec.options) - set(allowed))
    if unknown:
        raise DatasetError(f'unknown option(s) {unknown} for a {spec.kind!r} dataset; allowed: {list(allowed)}')


# ----------------------------------------------------------------------------
# Backends: raw storage, indexed 0..n-1 in a fixed (sorted) order.


class _Backend:
    """Where raw images live. Subclasses fill in the hooks."""

    name: str = 'dataset'
    c_dim: int = 0
    can_probe: bool = False  # whether probe() is cheap and meaningful

    def __len__(self) -> int:
        raise NotImplementedError

    def describe(self, i: int) -> str:
        return f'item {i}'

    def nbytes(self, i: int) -> int | None:
        return None

    def probe(self, i: int) -> None:
        pass

    def load(self, i: int, resolution: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Image ``[R, R, 3]`` uint8 and label ``[c_dim]`` float32 (or None)."""
        raise NotImplementedError

    def load_many(self, indices: np.ndarray, resolution: int, on_bad) -> list:
        """Load several items; ``on_bad(i, err)`` is called for bad ones."""
        out = []
        for i in indices:
            try:
                out.append(self.load(int(i), resolution))
            except BadImageError as e:
                on_bad(int(i), e)
                out.append(None)
        return out


def _load_json_labels(raw: bytes | None, names: list[str], where: str) -> np.ndarray | None:
    """NVlabs ``dataset.json``: ``{"labels": [[name, label], ...] | null}``."""
    if raw is None:
        return None
    try:
        meta = json.loads(raw)
    except ValueError as e:
        raise DatasetError(f'{where}: dataset.json is not valid JSON: {e}') from e
    labels = meta.get('labels') if isinstance(meta, dict) else None
    if labels is None:
        return None
    table = {str(k).replace('\\', '/'): v for k, v in labels}
    missing = [n for n in names if n not in table]
    if missing:
        raise DatasetError(f'{where}: dataset.json has no label for {len(missing)} image(s), e.g. {missing[0]!r}')
    arr = np.array([table[n] for n in names])
    if arr.ndim == 1 and np.issubdtype(arr.dtype, np.integer):
        if arr.size and arr.min() < 0:
            raise DatasetError(f'{where}: negative class label in dataset.json')
        onehot = np.zeros((len(arr), int(arr.max()) + 1 if arr.size else 0), np.float32)
        onehot[np.arange(len(arr)), arr] = 1
        return onehot
    arr = arr.astype(np.float32)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise DatasetError(f'{where}: labels in dataset.json must be ints or flat vectors')
    return arr


def _is_image_name(name: str) -> bool:
    base = name.rsplit('/', 1)[-1]
    if base.startswith('.') or '__MACOSX/' in name:  # hidden files, macOS forks
        return False
    return os.path.splitext(base)[1].lower() in IMAGE_EXTENSIONS


class _FileBackend(_Backend):
    """Shared logic of folder and zip backends (encoded files + labels)."""

    can_probe = True

    def __init__(self, names: list[str], labels: np.ndarray | None):
        self._names = names
        self._labels = labels
        self.c_dim = 0 if labels is None else int(labels.shape[1])

    def __len__(self) -> int:
        return len(self._names)

    def _read(self, i: int) -> bytes:
        raise NotImplementedError

    def probe(self, i: int) -> None:
        if self.nbytes(i) == 0:
            raise BadImageError(self.describe(i), 'zero-byte file')
        probe_image(self._read(i), path=self.describe(i))

    def load(self, i, resolution):
        data = self._read(i)
        img = decode_image(data, resolution, path=self.describe(i))
        return img, (None if self._labels is None else self._labels[i])

    def load_many(self, indices, resolution, on_bad):
        workers = min(8, (os.cpu_count() or 1) * 2)
        if len(indices) < 64 or workers <= 1:
            return super().load_many(indices, resolution, on_bad)

        def one(i):
            try:
                return self.load(int(i), resolution)
            except BadImageError as e:
                return e

        out = []
        with concurrent.futures.ThreadPoolExecutor(workers) as ex:
            for i, r in zip(indices, ex.map(one, indices, chunksize=16)):
                if isinstance(r, BadImageError):
                    on_bad(int(i), r)
                    r = None
                out.append(r)
        return out


def check_folder(root: str, what: str = 'dataset folder') -> None:
    """FileNotFoundError / NotADirectoryError naming what ``root`` is when it is not a folder."""
    if os.path.isdir(root):
        return
    if os.path.isfile(root):
        hint = f" (for an NVlabs zip use 'zip:{root}')" if root.lower().endswith('.zip') else ''
        raise DatasetNotADirectoryError(f'{what} {root!r} is a file, not a folder{hint}')
    if os.path.islink(root):
        raise DatasetNotFoundError(f'{what} {root!r} is a broken symbolic link')
    raise DatasetNotFoundError(f'{what} {root!r} does not exist')


def walk_files(root: str, report=_report) -> list[str]:
    """Sorted '/'-joined paths (relative to ``root``) of every non-hidden file below it.

    Links to folders are followed, each real folder at most once: a link back into a folder already listed
    (a symlink loop, or a second link to the same folder) is skipped and reported, so a loop can neither
    hang the listing nor list a file twice.
    """
    seen: set[tuple[int, int]] = set()
    skipped: list[str] = []
    out: list[str] = []
    stack = [(root, '')]
    while stack:
        path, rel = stack.pop()
        try:
            st = os.stat(path)
        except OSError:  # a broken link or a folder removed meanwhile
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:
            skipped.append(rel)
            continue
        seen.add(key)
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        subdirs = []
        for e in entries:
            if e.name.startswith('.'):
                continue
            name = e.name if not rel else f'{rel}/{e.name}'
            try:
                is_dir = e.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            if is_dir:
                subdirs.append((e.path, name))
            else:
                out.append(name)
        stack.extend(reversed(subdirs))
    if skipped and report is not None:
        report(
            f'{root}: skipped {len(skipped)} link(s) to folders already listed (symlink loop or duplicate '
            f'link), e.g. {skipped[0]!r}'
        )
    out.sort()
    return out


class _FolderBackend(_FileBackend):
    def __init__(self, root: str, use_labels: bool = True):
        check_folder(root)
        self._root = root
        names = [n for n in walk_files(root) if _is_image_name(n)]
        labels = None
        jpath = os.path.join(root, 'dataset.json')
        if use_labels and os.path.isfile(jpath):
            with open(jpath, 'rb') as f:
                labels = _load_json_labels(f.read(), names, jpath)
        super().__init__(names, labels)
        self.name = os.path.basename(os.path.normpath(root)) or 'folder'

    def _path(self, i: int) -> str:
        return os.path.join(self._root, self._names[i])

    def describe(self, i):
        return self._path(i)

    def nbytes(self, i):
        try:
            return os.path.getsize(self._path(i))
        except OSError:
            return None

    def _read(self, i):
        try:
            with open(self._path(i), 'rb') as f:
                return f.read()
        except OSError as e:
            raise BadImageError(self.describe(i), f'{type(e).__name__}: {e}') from e


class _ZipBackend(_FileBackend):
    """NVlabs layout: ``00000/img00000000.png`` + optional ``dataset.json``.

    Each thread (and each process after a fork) opens its own handle, so
    concurrent readers never contend for one file position.
    """

    def __init__(self, path: str, use_labels: bool = True):
        if not os.path.isfile(path):
            raise DatasetNotFoundError(f'dataset zip {path!r} does not exist')
        self._path = path
        self._local = threading.local()
        try:
            with zipfile.ZipFile(path) as z:
                infos = {i.filename: i for i in z.infolist() if not i.is_dir()}
                names = sorted(n for n in infos if _is_image_name(n))
                self._sizes = {n: infos[n].file_size for n in names}
                raw_json = z.read('dataset.json') if 'dataset.json' in infos and use_labels else None
        except zipfile.BadZipFile as e:
            raise DatasetError(f'{path!r} is not a readable zip archive: {e}') from e
        labels = _load_json_labels(raw_json, names, f'{path}:dataset.json')
        super().__init__(names, labels)
        self.name = os.path.splitext(os.path.basename(path))[0]

    def __getstate__(self):
        state = self.__dict__.copy()
        state['_local'] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._local = threading.local()

    def _zip(self) -> zipfile.ZipFile:
        loc = self._local
        z = getattr(loc, 'zip', None)
        if z is None or getattr(loc, 'pid', None) != os.getpid():
            z = zipfile.ZipFile(self._path)
            loc.zip, loc.pid = z, os.getpid()
        return z

    def describe(self, i):
        return f'{self._path}:{self._names[i]}'

    def nbytes(self, i):
        return self._sizes[self._names[i]]

    def _read(self, i):
        try:
            return self._zip().read(self._names[i])
        except Exception as e:  # BadZipFile (CRC), zlib.error, OSError, ...
            raise BadImageError(self.describe(i), f'{type(e).__name__}: {e}') from e


class _TfdsBackend(_Backend):
    """A registered TFDS dataset read through ``tfds.data_source`` (ArrayRecord).

    Needs ``tensorflow-datasets`` but not TensorFlow. Nothing is downloaded
    unless the spec says ``download=1``.
    """

    def __init__(self, name, split, *, data_dir=None, image_key=None, label_key=None, download=False):
        try:
            import tensorflow_datasets as tfds
        except ImportError as e:  # pragma: no cover - depends on the install
            raise ImportError("tfds: datasets need tensorflow-datasets (pip install 'alignjax[tfds]')") from e
        self._ds = tfds.data_source(name, split=split, data_dir=data_dir, download=download)
        features = self._ds.dataset_info.features
        feats = dict(features.items())
        if image_key is None:
            images = [k for k, f in feats.items() if type(f).__name__ == 'Image']
            if not images:
                raise DatasetError(f'tfds:{name} has no Image feature (features: {list(feats)})')
            image_key = 'image' if 'image' in images else images[0]
        elif image_key not in feats:
            raise DatasetError(f'tfds:{name} has no feature {image_key!r} (features: {list(feats)})')
        self._image_key = image_key
        self._label_key = None
        self.c_dim = 0
        if label_key is None and 'label' in feats and hasattr(feats['label'], 'num_classes'):
            label_key = 'label'
        if label_key not in (None, 'none', ''):
            if label_key not in feats or not hasattr(feats[label_key], 'num_classes'):
                raise DatasetError(f'tfds:{name}: {label_key!r} is not a ClassLabel feature')
            self._label_key = label_key
            self.c_dim = int(feats[label_key].num_classes)
        self.name = name.split('/')[0]
        self._where = f'tfds:{name}:{split}'

    def __len__(self):
        return len(self._ds)

    def describe(self, i):
        return f'{self._where}[{i}]'

    def load(self, i, resolution):
        try:
            ex = self._ds[i]
        except Exception as e:
            raise BadImageError(self.describe(i), f'{type(e).__name__}: {e}') from e
        img = decode_image(np.asarray(ex[self._image_key]), resolution, path=self.describe(i))
        label = None
        if self._label_key is not None:
            label = np.zeros([self.c_dim], np.float32)
            label[int(ex[self._label_key])] = 1
        return img, label


class _ProceduralBackend(_Backend):
    """The procedural benchmark: item ``i`` is rendered from factors(seed, i)."""

    def __init__(self, domain: str, *, seed: int = 0, n: int = 70000, cond: bool = False):
        if domain not in procedural.DOMAINS:
            raise DatasetError(f'unknown procedural domain {domain!r}; choose from {procedural.DOMAINS}')
        if n <= 0:
            raise EmptyDatasetError(f'proc:{domain} with n={n} has no images')
        self._proc = procedural
        self.domain, self.seed, self.n, self.cond = domain, int(seed), int(n), bool(cond)
        self.c_dim = procedural.NUM_FACTORS if cond else 0
        self.name = f'proc-{domain}'

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop('_proc')
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._proc = procedural

    def __len__(self):
        return self.n

    def describe(self, i):
        return f'proc:{self.domain}?seed={self.seed} index {i}'

    def factors(self, indices) -> np.ndarray:
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        return self._proc.sample_factors(self.seed, indices=indices)

    def render(self, indices, resolution):
        return self._proc.render(self.domain, self.factors(indices), resolution)

    def _label(self, f):
        return self._proc.normalize_factors(f) if self.cond else None

    def load(self, i, resolution):
        f = self.factors([i])
        img = self._proc.render(self.domain, f, resolution, outputs=('image',))['image'][0]
        lab = self._label(f)
        return img, (None if lab is None else lab[0])

    def load_many(self, indices, resolution, on_bad):
        out = []
        step = max(1, (1 << 21) // (resolution * resolution))
        for s in range(0, len(indices), step):
            idx = np.asarray(indices[s : s + step])
            f = self.factors(idx)
            imgs = self._proc.render(self.domain, f, resolution, outputs=('image',))['image']
            labs = self._label(f)
            out.extend((imgs[k], None if labs is None else labs[k]) for k in range(len(idx)))
        return out


def _backend_from_spec(spec: DatasetSpec) -> _Backend:
    o = spec.options
    if spec.kind == 'folder':
        _check_options(spec, ('labels',))
        return _FolderBackend(spec.target, _flag(o, 'labels', True))
    if spec.kind == 'zip':
        _check_options(spec, ('labels',))
        return _ZipBackend(spec.target, _flag(o, 'labels', True))
    if spec.kind == 'tfds':
        _check_options(spec, ('data_dir', 'image_key', 'label_key', 'download'))
        return _TfdsBackend(
            spec.target,
            spec.split,
            data_dir=o.get('data_dir'),
            image_key=o.get('image_key'),
            label_key=o.get('label_key'),
            download=_flag(o, 'download', False),
        )
    if spec.kind == 'proc':
        _check_options(spec, ('seed', 'n', 'cond'))
        return _ProceduralBackend(
            spec.target,
            seed=_int_option(spec, 'seed', 0),
            n=_int_option(spec, 'n', 70000),
            cond=_flag(o, 'cond', False),
        )
    raise ValueError(f'unknown dataset kind {spec.kind!r}')  # pragma: no cover


# ----------------------------------------------------------------------------
# The dataset seen by the loader.


class ImageDataset:
    """Random-access source of ``dict(image=uint8[R,R,3], label=float32[c_dim])``.

    Build it with :func:`make_dataset`. Attributes: ``name``, ``resolution``,
    ``c_dim``, ``spec``, ``xflip``, ``in_memory``, ``num_bad`` (bad files
    skipped so far), ``bad_files`` (their descriptions), ``bad_reasons`` ({description: reason}).
    """

    def __init__(
        self,
        backend: _Backend,
        resolution: int,
        *,
        spec: str,
        xflip: bool = False,
        bad_file_policy: str = 'fail',
        in_memory: bool | None = None,
        max_images: int | None = None,
        verify: str = 'header',
        random_seed: int = 0,
    ):
        if bad_file_policy not in _POLICIES:
            raise ValueError(f'bad_file_policy must be one of {_POLICIES}, got {bad_file_policy!r}')
        if verify not in ('none', 'header', 'full'):
            raise ValueError(f"verify must be 'none', 'header' or 'full', got {verify!r}")
        if not isinstance(resolution, (int, np.integer)) or resolution < 1:
            raise ValueError(f'resolution must be a positive int, got {resolution!r}')
        self._backend = backend
        self.name = backend.name
        self.spec = spec
        self.resolution = int(resolution)
        self.c_dim = int(backend.c_dim)
        self.xflip = bool(xflip)
        self.bad_file_policy = bad_file_policy
        self.max_images = max_images
        self._lock = threading.Lock()
        self.bad_files: list[str] = []
        self.bad_reasons: dict[str, str] = {}
        self._bad_raw: set[int] = set()

        n_raw = len(backend)
        if n_raw == 0:
            looked = f' (looked for {describe_extensions()})' if isinstance(backend, _FileBackend) else ''
            raise EmptyDatasetError(f'{spec!r}: no images found{looked}')
        raw_idx = np.arange(n_raw, dtype=np.int64)

        # Cheap construction-time checks: zero-byte files, unreadable headers.
        if verify != 'none' and backend.can_probe:
            bad = []
            for i in range(n_raw):
                try:
                    backend.probe(i)
                except BadImageError as e:
                    self._bad(e, startup=True)
                    bad.append(i)
            if bad:
                raw_idx = np.setdiff1d(raw_idx, bad)

        if max_images is not None and raw_idx.size > max_images:
            rnd = np.random.RandomState(random_seed % (1 << 31))
            raw_idx = raw_idx.copy()
            rnd.shuffle(raw_idx)
            raw_idx = np.sort(raw_idx[:max_images])

        if in_memory is None:
            if isinstance(backend, _ProceduralBackend):
                in_memory = raw_idx.size <= IN_MEMORY_PROC_IMAGES
            else:
                in_memory = raw_idx.size * self.resolution**2 * 3 <= IN_MEMORY_BYTES
        self.in_memory = bool(in_memory)
        self._images = None
        self._labels = None
        if self.in_memory or verify == 'full':
            bad = []
            items = backend.load_many(
                raw_idx, self.resolution, lambda i, e: (self._bad(e, startup=True), bad.append(i))
            )
            keep = [k for k, it in enumerate(items) if it is not None]
            if bad:
                raw_idx = raw_idx[keep]
            if self.in_memory and keep:
                self._images = np.stack([items[k][0] for k in keep])
                self._images.flags.writeable = False  # items are zero-copy views
                if self.c_dim:
                    self._labels = np.stack([items[k][1] for k in keep]).astype(np.float32)
            del items
        if raw_idx.size == 0:
            what = f'all {len(self.bad_files)} files are bad' if self.bad_files else 'no images'
            raise EmptyDatasetError(f'{spec!r}: {what}')
        if self.bad_files:
            _report(f'{spec}: skipped {len(self.bad_files)} bad file(s) of {n_raw}; {raw_idx.size} images remain')
        self._raw_idx = raw_idx
        self._empty_label = np.zeros([0], np.float32)

    def __getstate__(self):  # picklable for grain's worker processes
        state = self.__dict__.copy()
        state['_lock'] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # -- bookkeeping ------------------------------------------------------
    def _bad(self, err: BadImageError, startup: bool = False) -> None:
        if self.bad_file_policy == 'fail':
            raise err.with_hint(SKIP_HINT) from err
        with self._lock:
            self.bad_files.append(err.path)
            self.bad_reasons[err.path] = err.reason
            count = len(self.bad_files)
        if not startup or count <= 10:
            _report(f'skipping {err} [{count} bad file(s) so far]')
        elif count == 11:
            _report('... (further bad files are only counted)')

    @property
    def num_bad(self) -> int:
        return len(self.bad_files)

    @property
    def num_raw(self) -> int:
        """Images before mirroring."""
        return int(self._raw_idx.size)

    def __len__(self) -> int:
        return self.num_raw * (2 if self.xflip else 1)

    def __repr__(self) -> str:  # grain validates checkpoints with repr()
        return (
            f'ImageDataset(spec={self.spec!r}, resolution={self.resolution}, xflip={self.xflip}, '
            f'max_images={self.max_images}, len={len(self)})'
        )

    def _split(self, idx) -> tuple[int, bool]:
        i = int(idx)
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f'index {idx} out of range for dataset of length {n}')
        flip = i >= self.num_raw
        return (i - self.num_raw if flip else i), flip

    def raw_index(self, idx) -> int:
        """Index into the backend (e.g. the procedural image index) of item ``idx``."""
        k, _ = self._split(idx)
        return int(self._raw_idx[k])

    def describe(self, idx) -> str:
        k, flip = self._split(idx)
        return self._backend.describe(int(self._raw_idx[k])) + (' (x-flipped)' if flip else '')

    def _load(self, k: int) -> tuple[np.ndarray, np.ndarray | None]:
        if self._images is not None:
            return self._images[k], (None if self._labels is None else self._labels[k])
        # Under "skip", a bad file found while streaming is replaced by the next
        # good one in storage order, so the substitution is deterministic.
        for step in range(self.num_raw):
            raw = int(self._raw_idx[(k + step) % self.num_raw])
            if raw in self._bad_raw:
                continue
            try:
                return self._backend.load(raw, self.resolution)
            except BadImageError as e:
                self._bad(e)  # raises under "fail"
                with self._lock:
                    self._bad_raw.add(raw)
        raise EmptyDatasetError(f'{self.spec!r}: every image failed to decode')

    def __getitem__(self, idx) -> dict[str, np.ndarray]:
        k, flip = self._split(idx)
        img, label = self._load(k)
        if flip:
            img = img[:, ::-1]
        return {
            'image': np.ascontiguousarray(img),
            'label': self._empty_label if label is None else np.asarray(label, np.float32),
        }

    # -- procedural ground truth -------------------------------------------
    def annotations(self, indices) -> dict[str, np.ndarray]:
        """Ground truth (factors, landmarks, mask, ...) for items of a ``proc:`` dataset.

        Mirrored items get mirrored landmarks/masks (left/right names swap).
        """
        if not isinstance(self._backend, _ProceduralBackend):
            raise TypeError(f'{self.spec!r} is not a procedural dataset')
        indices = np.atleast_1d(np.asarray(indices, np.int64))
        pairs = [self._split(i) for i in indices]
        raw = np.array([int(self._raw_idx[k]) for k, _ in pairs], np.int64)
        out = self._backend.render(raw, self.resolution)
        flips = np.array([f for _, f in pairs])
        if flips.any():
            out = procedural.flip_annotations(self._backend.domain, out, where=flips)
        return out


def make_dataset(
    spec: str,
    resolution: int,
    *,
    xflip: bool = False,
    bad_file_policy: str = 'fail',
    in_memory: bool | None = None,
    max_images: int | None = None,
    verify: str = 'header',
) -> ImageDataset:
    """Open ``spec`` (see the module docstring) as an :class:`ImageDataset`.

    Args:
      spec: ``folder:PATH``, ``zip:PATH``, ``tfds:NAME[:SPLIT]``,
        ``proc:DOMAIN[?seed=S&n=N&cond=1]`` or a bare folder/zip path.
      resolution: output size; images are centre-cropped to a square and
        Lanczos-resized.
      xflip: add mirrored copies (doubles ``len``).
      bad_file_policy: ``'fail'`` raises :class:`BadImageError` naming the first
        bad file; ``'skip'`` reports and counts them and carries on.
      in_memory: decode everything once into a uint8 array. ``None`` decides by
        size (at most 1 GiB of pixels; procedural sets up to 5000 images).
      max_images: keep a fixed random subset of this size (NVlabs semantics).
      verify: construction-time check: ``'header'`` (default, cheap: zero-byte
        and non-image files), ``'full'`` (decode everything once) or ``'none'``.
    """
    parsed = parse_spec(spec)
    backend = _backend_from_spec(parsed)
    return ImageDataset(
        backend,
        resolution,
        spec=str(parsed),
        xflip=xflip,
        bad_file_policy=bad_file_policy,
        in_memory=in_memory,
        max_images=max_images,
        verify=verify,
    )
