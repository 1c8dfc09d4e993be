"""Plumbing shared by every command line (generate, invert.py, data.export, apps.morph, apps.layer_swap).

* `entry(main)`: a failure prints one `error: ...` line on stderr and exits 1 (130 on Ctrl-C); the traceback
  only with `--debug` or `ALIGNJAX_DEBUG=1`.
* `deprecated(parser, '--old', '--new')`: an old flag spelling kept as a hidden alias that says so.
* `check_outdir` / `check_outfile`: is the output writable, checked before any expensive work.

The flag vocabulary (README, "Command-line vocabulary"): --ckpt / --parent / --child (checkpoints), --net,
--seeds (default 0-7), --psi / --psi-cutoff (truncation), --outdir DIR (a folder of outputs) or --out FILE
(one file), --max-images, --resolution, --skip-bad, --batch, --no-progress, --debug.
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
import uuid
from pathlib import Path

DEBUG_ENV = 'ALIGNJAX_DEBUG'
DEFAULT_SEEDS = '0-7'


class CliError(Exception):
    """A user-facing failure: printed as `error: <message>`, no traceback."""


def debug_requested(argv=None) -> bool:
    args = sys.argv[1:] if argv is None else list(argv)
    return '--debug' in args or os.environ.get(DEBUG_ENV, '').strip() not in ('', '0', 'false', 'no')


def add_debug(p: argparse.ArgumentParser):
    p.add_argument('--debug', action='store_true', help=f'show the traceback of a failure (or set {DEBUG_ENV}=1)')


def _known(e: BaseException) -> bool:
    from alignjax.data._image import BadImageError
    from alignjax.io.safe_pickle import CheckpointError
    return isinstance(e, (CliError, CheckpointError, BadImageError, ValueError, KeyError, OSError, ImportError))


def message(e: BaseException) -> str:
    """The one-line text of an exception (KeyError without its quotes, OSError with its path)."""
    if isinstance(e, KeyError) and len(e.args) == 1 and isinstance(e.args[0], str):
        text = e.args[0]
    elif isinstance(e, OSError) and e.strerror and e.filename is not None:
        text = f'{e.filename}: {e.strerror}' + (f' ({e.filename2})' if e.filename2 else '')
    else:
        text = str(e) or type(e).__name__
    if not _known(e):
        text = f'{type(e).__name__}: {text} (run with --debug or {DEBUG_ENV}=1 for the traceback)'
    return ' '.join(text.split())


def fail(msg: str, code: int = 1):
    print(f'error: {msg}', file=sys.stderr, flush=True)
    raise SystemExit(code)


def entry(fn):
    """Wrap a CLI `main(argv=None)`: exceptions become one `error:` line and exit status 1."""
    @functools.wraps(fn)
    def main(argv=None):
        try:
            return fn(argv)
        except SystemExit:
            raise
        except KeyboardInterrupt:
            if debug_requested(argv):
                raise
            fail('interrupted', 130)
        except Exception as e:  # noqa: BLE001 - the whole point: no traceback for users
            if debug_requested(argv):
                raise
            fail(message(e))
    return main


class _Deprecated(argparse.Action):
    def __init__(self, option_strings, dest, new: str = '', **kw):
        self.new = new
        super().__init__(option_strings, dest, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f'warning: {option_string} is deprecated, use {self.new}', file=sys.stderr)
        setattr(namespace, self.dest, values)


def deprecated(p: argparse.ArgumentParser, old: str, new: str, **kw):
    """Accept `old` as a hidden alias of the already-defined option `new` (same dest and type)."""
    act = p._option_string_actions[new]   # noqa: SLF001 - argparse has no public lookup
    kw.setdefault('type', act.type)
    p.add_argument(old, dest=act.dest, action=_Deprecated, new=new, help=argparse.SUPPRESS,
                   default=argparse.SUPPRESS, **kw)


def _probe_dir(d: Path, what: str):
    probe = d / f'.alignjax-write-test-{uuid.uuid4().hex[:8]}'
    try:
        probe.write_bytes(b'')
        probe.unlink()
    except OSError as e:
        raise CliError(f'{what} {d} is not writable ({e.strerror or e})') from None


def check_outdir(path, what: str = '--outdir') -> Path:
    """Create the output folder (and parents) and check it is writable; CliError otherwise."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise CliError(f'{what} {p} is a file, not a folder')
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CliError(f'{what} {p}: cannot create it ({e.strerror or e})') from None
    _probe_dir(p, what)
    return p


def check_outfile(path, what: str = '--out') -> Path:
    """Check that file `path` can be written (its folder is created); CliError otherwise."""
    p = Path(path)
    if p.is_dir():
        raise CliError(f'{what} {p} is a folder, not a file name')
    check_outdir(p.parent if str(p.parent) else Path('.'), f'the folder of {what}')
    return p


def parse_seeds(text: str, flag: str = '--seeds') -> list[int]:
    """'0-7' / '1,5,9' / '0-3,10' -> seeds; CliError naming the flag for anything else."""
    out = []
    for part in str(text).split(','):
        part = part.strip()
        if not part:
            continue
        a, sep, b = part.partition('-')
        try:
            lo = int(a)
            hi = int(b) if sep else lo
        except ValueError:
            raise CliError(f"{flag} {text!r}: {part!r} is not a seed or a range (e.g. '0-7' or '1,5,9')") from None
        if hi < lo:
            raise CliError(f'{flag} {text!r}: range {part!r} is empty (write low-high)')
        out.extend(range(lo, hi + 1))
    if not out:
        raise CliError(f"{flag} {text!r} names no seeds (e.g. '0-7' or '1,5,9')")
    bad = [s for s in out if not 0 <= s < 2 ** 32]
    if bad:
        raise CliError(f'{flag} {text!r}: seeds must be in [0, 2**32), got {bad[0]}')
    return out
