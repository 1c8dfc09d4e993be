"""Decoding one encoded image into a square uint8 RGB array.

Every file-backed source funnels through :func:`decode_image`, so all of them
share the same rules:

* any PIL mode becomes 8-bit RGB (see :func:`to_rgb` for the exact rules:
  16-bit and float greyscale are rescaled, not clipped; transparent images are
  composited over a background colour; CMYK uses its ICC profile when it has
  one);
* EXIF orientation is applied, so phone photos are upright;
* the largest centred square is cropped and resized to the model resolution
  with a Lanczos filter (JPEGs are DCT-downscaled first, never below twice the
  target size, which is both fast and free of visible loss);
* any failure (not an image, truncated, zero bytes, unsupported codec) raises
  :class:`BadImageError` naming the file.
"""

from __future__ import annotations

import io
import math
import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from alignjax.errors import AlignjaxError

__all__ = [
    'DatasetError',
    'DatasetNotFoundError',
    'BadImageError',
    'EmptyDatasetError',
    'IMAGE_EXTENSIONS',
    'decode_image',
    'to_rgb',
    'crop_resize',
    'probe_image',
    'describe_extensions',
]


class DatasetError(AlignjaxError, ValueError):
    """A dataset spec, its options or its files cannot be used (the message names the spec or file).
    Also a `ValueError`, as these always were."""


class DatasetNotFoundError(AlignjaxError, FileNotFoundError):
    """A dataset folder or archive that does not exist (or a folder that is a file: see `check_folder`).
    Also a `FileNotFoundError`, as it always was."""


class DatasetNotADirectoryError(AlignjaxError, NotADirectoryError):
    """A `folder:` dataset that names a file. Also a `NotADirectoryError`, as it always was."""


class BadImageError(DatasetError):
    """A file that should hold an image could not be decoded.

    ``path`` names the file (``archive.zip:member`` for zip members),
    ``reason`` says what went wrong and ``hint`` (optional) how to go on;
    every caller words the same file's problem the same way.
    """

    def __init__(self, path: str, reason: str, hint: str | None = None):
        super().__init__(f'bad image file {path!r}: {reason}' + (f' ({hint})' if hint else ''))
        self.path = path
        self.reason = reason
        self.hint = hint

    def with_hint(self, hint: str | None) -> BadImageError:
        return type(self)(self.path, self.reason, hint)

    def __reduce__(self):  # keep the fields when the error crosses processes
        return (type(self), (self.path, self.reason, self.hint))


class EmptyDatasetError(DatasetError):
    """A dataset spec resolved to zero usable images."""


def _readable(fmt: str) -> bool:
    """Whether PIL can decode format ``fmt`` here: not save-only (PDF, PALM) and not a stub without a
    handler (HDF5, BUFR, GRIB, WMF); MPO files are opened by the JPEG plugin."""
    from PIL import ImageFile

    if fmt == 'MPO':
        return True
    opener = Image.OPEN.get(fmt)
    if opener is None:
        return False
    cls = opener[0]
    return not (isinstance(cls, type) and issubclass(cls, ImageFile.StubImageFile))


def _image_extensions() -> frozenset[str]:
    Image.init()
    return frozenset(ext.lower() for ext, fmt in Image.registered_extensions().items() if _readable(fmt))


#: File extensions treated as images (every format PIL can decode).
IMAGE_EXTENSIONS = _image_extensions()
_COMMON_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.webp', '.bmp', '.gif', '.tif', '.tiff')


def describe_extensions() -> str:
    """A short description of the image extensions looked for (for "no images found" messages)."""
    common = [e for e in _COMMON_EXTENSIONS if e in IMAGE_EXTENSIONS]
    return f'{", ".join(common)} and {len(IMAGE_EXTENSIONS) - len(common)} more formats PIL reads'


_SIXTEEN_BIT = {'I;16', 'I;16L', 'I;16B', 'I;16N'}


def _scale_to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    """Rescale a single-channel integer/float image to uint8."""
    if mode in _SIXTEEN_BIT:
        return ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)
    a = arr.astype(np.float64)
    if mode == 'F':
        hi = float(a.max()) if a.size else 0.0
        if hi <= 1.0 + 1e-6:  # [0, 1] floats
            a = a * 255.0
        return np.clip(np.rint(a), 0, 255).astype(np.uint8)
    # mode "I" (32-bit signed): PIL uses it for 16-bit PNGs on some versions.
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if lo >= 0 and hi <= 255:
        pass
    elif lo >= 0 and hi <= 65535:
        a = a / 257.0
    else:  # arbitrary range: stretch
        a = (a - lo) * (255.0 / max(hi - lo, 1.0))
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def to_rgb(img: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Convert any PIL image to mode ``RGB``.

    * ``RGB``: unchanged.
    * ``1``, ``L``: grey replicated to three channels.
    * ``I;16*`` (16-bit), ``I`` (32-bit int) and ``F`` (float): rescaled to
      8 bits (``/257`` for 16-bit, ``x255`` for [0,1] floats) instead of PIL's
      clipping conversion, which would turn most 16-bit images white.
    * ``RGBA``, ``LA``, ``PA``, ``RGBa``, ``La`` and ``P`` with a transparency
      key: alpha-composited over ``background`` (white by default), so the
      colour stored under fully transparent pixels never leaks in.
    * ``CMYK``: through its embedded ICC profile when it has one (to sRGB),
      otherwise PIL's formula.
    * anything else (``YCbCr``, ``LAB``, ``HSV``, ...): PIL's ``convert``.
    """
    mode = img.mode
    if mode == 'RGB':
        return img
    if mode in _SIXTEEN_BIT or mode in ('I', 'F'):
        arr = _scale_to_uint8(np.asarray(img), mode)
        return Image.fromarray(arr, 'L').convert('RGB')
    if mode == 'P':
        img = img.convert('RGBA' if 'transparency' in img.info else 'RGB')
        mode = img.mode
        if mode == 'RGB':
            return img
    if mode in ('RGBA', 'LA', 'PA', 'RGBa', 'La'):
        rgba = img.convert('RGBA')
        base = Image.new('RGBA', rgba.size, tuple(background) + (255,))
        return Image.alpha_composite(base, rgba).convert('RGB')
    if mode == 'CMYK':
        icc = img.info.get('icc_profile')
        if icc:
            try:
                from PIL import ImageCms

                src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
                dst = ImageCms.createProfile('sRGB')
                return ImageCms.profileToProfile(img, src, dst, outputMode='RGB')
            except Exception:  # broken profile: fall back to the formula
                pass
        return img.convert('RGB')
    if mode == '1':
        img = img.convert('L')
    return img.convert('RGB')


def crop_resize(img: Image.Image, resolution: int) -> Image.Image:
    """Largest centred square, resized to ``resolution`` (Lanczos)."""
    w, h = img.size
    if w == h == resolution:
        return img
    crop = min(w, h)
    left, top = (w - crop) / 2.0, (h - crop) / 2.0
    box = (left, top, left + crop, top + crop)
    return img.resize((resolution, resolution), Image.Resampling.LANCZOS, box=box)


def _open(data: bytes | str | os.PathLike) -> Image.Image:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return Image.open(io.BytesIO(data))
    return Image.open(data)


def decode_image(
    data: bytes | str | os.PathLike | Image.Image | np.ndarray,
    resolution: int,
    *,
    path: str | None = None,
    background: tuple[int, int, int] = (255, 255, 255),
) -> np.ndarray:
    """Decode ``data`` to a ``[resolution, resolution, 3]`` uint8 array.

    ``data`` is encoded bytes, a filesystem path, a PIL image or an HWC / HW
    array. ``path`` is only used for error messages. Raises
    :class:`BadImageError` on any failure.
    """
    where = path if path is not None else (str(data) if isinstance(data, (str, os.PathLike)) else '<bytes>')
    try:
        if _zero_bytes(data):
            raise BadImageError(where, 'zero-byte file')
        if isinstance(data, np.ndarray):
            arr = data
            if arr.ndim == 3 and arr.shape[-1] == 1:
                arr = arr[..., 0]
            img = Image.fromarray(arr)
        elif isinstance(data, Image.Image):
            img = data
        else:
            img = _open(data)
            if img.format == 'JPEG':
                # DCT-domain downscale, but keep >= 2x the target resolution.
                w, h = img.size
                crop = max(min(w, h), 1)
                k = 2.0 * resolution / crop
                img.draft(None, (math.ceil(w * k), math.ceil(h * k)))
            img = ImageOps.exif_transpose(img)  # also forces the full decode
        img.load()
        img = to_rgb(img, background)
        img = crop_resize(img, resolution)
        out = np.asarray(img, dtype=np.uint8)
        if out.shape != (resolution, resolution, 3):  # pragma: no cover - defensive
            raise BadImageError(where, f'decoded to unexpected shape {out.shape}')
        return out
    except BadImageError:
        raise
    except Exception as e:  # PIL raises many types: OSError, SyntaxError, ValueError, ...
        raise BadImageError(where, _reason(e)) from e


def _zero_bytes(data) -> bool:
    """An empty buffer or an empty file (the same message for every source: folders, zips, paths)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return len(data) == 0
    if isinstance(data, (str, os.PathLike)):
        try:
            return os.path.getsize(data) == 0
        except OSError:
            return False
    return False


def _reason(e: Exception) -> str:
    if isinstance(e, UnidentifiedImageError):
        return 'not an image (unrecognised format)'
    return f'{type(e).__name__}: {e}'


def probe_image(data: bytes | str | os.PathLike, *, path: str | None = None) -> tuple[int, int]:
    """Cheap validity check: parse the header only. Returns (width, height)."""
    where = path if path is not None else str(data) if not isinstance(data, (bytes, bytearray)) else '<bytes>'
    if _zero_bytes(data):
        raise BadImageError(where, 'zero-byte file')
    try:
        with _open(data) as img:
            return img.size
    except Exception as e:
        raise BadImageError(where, _reason(e)) from e
