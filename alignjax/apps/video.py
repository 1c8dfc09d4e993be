"""Write frame sequences as GIF, MP4 and a strip PNG (imageio; MP4 needs the `imageio-ffmpeg` package, whose
wheels ship their own ffmpeg binary: `pip install imageio-ffmpeg`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from alignjax import vis


def _u8(frames) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        frames = vis.to_uint8(frames)
    if frames.ndim != 4:
        raise ValueError(f'frames must be [F, H, W, C], got {frames.shape}')
    return frames


def upscale(frames: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling of uint8 [F, H, W, C] by an integer factor."""
    if scale <= 1:
        return frames
    return frames.repeat(scale, axis=1).repeat(scale, axis=2)


def write_gif(path, frames, seconds: float = 8.0, loop: int = 0) -> Path:
    """Animated GIF lasting about `seconds` (GIF frame times are multiples of 10 ms)."""
    import imageio.v3 as iio

    frames = _u8(frames)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ms = max(20, int(round(seconds * 1000 / len(frames) / 10)) * 10)
    tmp = path.with_name(f'.{path.stem}.tmp.gif')
    if frames.shape[-1] == 1:
        frames = frames[..., 0]
    iio.imwrite(tmp, frames, extension='.gif', duration=ms, loop=loop)
    os.replace(tmp, path)
    return path


def mp4_available() -> tuple[bool, str]:
    """(available, why not)."""
    try:
        import warnings

        import imageio_ffmpeg

        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', message='os.fork', category=RuntimeWarning)
            imageio_ffmpeg.get_ffmpeg_exe()
        return True, ''
    except ImportError:
        return False, 'the imageio-ffmpeg package is not installed (pip install imageio-ffmpeg: its wheels ship ffmpeg)'
    except Exception as e:  # installed but no binary for this platform
        return False, f'imageio-ffmpeg found no ffmpeg binary ({e})'


_WARNED = set()


def _warn_once(msg: str, key: str):
    if key not in _WARNED:
        _WARNED.add(key)
        print(msg, file=sys.stderr)


def write_mp4(path, frames, seconds: float = 8.0, fallback_gif: bool = True) -> Path | None:
    """H.264 MP4 (yuv420p) lasting `seconds`. When ffmpeg is unavailable, says so on stderr and writes a GIF
    next to it instead (returns that path), or returns None with `fallback_gif=False`."""
    frames = _u8(frames)
    path = Path(path)
    ok, why = mp4_available()
    if not ok:
        if not fallback_gif:
            _warn_once(f'warning: cannot write MP4 ({path}): {why}', why)
            return None
        gif = path.with_suffix('.gif')
        _warn_once(f'warning: cannot write MP4 ({path}): {why}; writing GIFs instead', why)
        return gif if gif.exists() else write_gif(gif, frames, seconds)
    import imageio.v2 as iio2

    h, w = frames.shape[1:3]
    if h % 2 or w % 2:  # yuv420p needs even sizes
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode='edge')
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.stem}.tmp.mp4')
    fps = len(frames) / seconds
    import warnings

    with warnings.catch_warnings():
        # imageio-ffmpeg starts ffmpeg with subprocess (fork + immediate exec), which JAX warns about; the
        # child runs no Python code, so the deadlock the warning is about cannot happen.
        warnings.filterwarnings('ignore', message='os.fork', category=RuntimeWarning)
        with iio2.get_writer(
            tmp,
            format='FFMPEG',
            mode='I',
            fps=fps,
            codec='libx264',
            quality=8,
            pixelformat='yuv420p',
            macro_block_size=1,
            ffmpeg_log_level='error',
        ) as wr:
            for f in frames:
                wr.append_data(f)
    os.replace(tmp, path)
    return path


def strip(frames, n: int = 8) -> np.ndarray:
    """n frames evenly spaced from first to last, side by side: uint8 [H, n*W, C]."""
    frames = _u8(frames)
    idx = np.unique(np.round(np.linspace(0, len(frames) - 1, min(n, len(frames)))).astype(int))
    return np.concatenate(list(frames[idx]), axis=1)


def write_strip(path, frames, n: int = 8) -> Path:
    return vis.save_png(path, strip(frames, n))


def save_animation(
    stem, frames, seconds: float = 8.0, formats=('gif', 'mp4', 'png'), strip_frames: int = 8, scale: int = 1
) -> dict[str, Path]:
    """Write `stem`.gif / .mp4 / .png (strip); returns {format: path written} (an MP4 that fell back to GIF
    maps to the GIF)."""
    frames = upscale(_u8(frames), scale)
    stem = Path(stem)
    out = {}
    if 'gif' in formats:
        out['gif'] = write_gif(stem.with_suffix('.gif'), frames, seconds)
    if 'mp4' in formats:
        p = write_mp4(stem.with_suffix('.mp4'), frames, seconds)
        if p is not None:
            out['mp4'] = p
    if 'png' in formats:
        out['png'] = write_strip(stem.with_suffix('.png'), frames, strip_frames)
    return out
