"""Flag plumbing shared by every command line: one flag system (absl flags; training adds ml_collections
config flags), one error policy, one output check.

* `Command(prog, doc)`: a private `absl.flags.FlagValues` per program (so programs can run one after another
  in one process, as the tests and notebooks do), with `--help` and `--debug` defined. Define flags with
  `flag_values=cmd.fv`; `cmd.parse(argv)` returns a namespace whose attributes are the flag names with
  `-` written `_` (`--max-images` -> `args.max_images`) and the positional arguments.
* `entry(main)`: an `AlignjaxError` (bad input, named with its file/key/flag) prints one `error: ...` line
  and exits 1 (130 on Ctrl-C); anything else is a bug and keeps its traceback. `--debug` or
  `ALIGNJAX_DEBUG=1` shows the traceback of every failure.
* `cmd.deprecated('--old', '--new')`: an old spelling kept as an alias that says so.
* `check_outdir` / `check_outfile`: the output is writable, checked before any expensive work.
* `compile_cache(argv)`: JAX's persistent compilation cache, on by default for every CLI (`entry` calls it;
  cli.train's main too): compiled programs are kept in `~/.cache/alignjax/jax` (`$ALIGNJAX_CACHE/jax`;
  `$JAX_COMPILATION_CACHE_DIR` when set wins), so only the first run of a command compiles.
  `--no-compile-cache` or `ALIGNJAX_COMPILE_CACHE=0` turns it off.

The flag vocabulary (README, "Command-line vocabulary"): --ckpt / --parent / --child (checkpoints), --net,
--seeds (default 0-7), --psi / --psi-cutoff (truncation), --outdir DIR (a folder of outputs) or --out FILE
(one file), --max-images, --resolution, --skip-bad, --batch, --no-progress, --debug.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import types
import uuid
from pathlib import Path

import jax
from absl import flags

from alignjax.errors import AlignjaxError

DEBUG_ENV = 'ALIGNJAX_DEBUG'
CACHE_ENV = 'ALIGNJAX_CACHE'  # the cache root (default ~/.cache/alignjax); programs in <root>/jax
CACHE_OFF_ENV = 'ALIGNJAX_COMPILE_CACHE'  # 0 / false / no / off: no persistent compilation cache
NO_CACHE_FLAGS = ('--no-compile-cache', '--nocompile-cache', '--nocompile_cache')
_FALSE = ('0', 'false', 'no', 'off')
DEFAULT_SEEDS = '0-7'


class CliError(AlignjaxError, ValueError):
    """A user-facing failure: printed as `error: <message>`, no traceback."""


def debug_requested(argv=None) -> bool:
    args = sys.argv[1:] if argv is None else list(argv)
    return '--debug' in args or os.environ.get(DEBUG_ENV, '').strip() not in ('', '0', 'false', 'no')


def message(e: BaseException) -> str:
    """The one-line text of an exception (KeyError without its quotes, OSError with its path)."""
    if isinstance(e, KeyError) and len(e.args) == 1 and isinstance(e.args[0], str):
        text = e.args[0]
    elif isinstance(e, OSError) and e.strerror and e.filename is not None:
        text = f'{e.filename}: {e.strerror}' + (f' ({e.filename2})' if e.filename2 else '')
    else:
        text = str(e) or type(e).__name__
    return ' '.join(text.split())


def fail(msg: str, code: int = 1):
    print(f'error: {msg}', file=sys.stderr, flush=True)
    raise SystemExit(code)


def cache_root() -> Path:
    """alignjax's per-user cache: $ALIGNJAX_CACHE, else $XDG_CACHE_HOME/alignjax, else ~/.cache/alignjax."""
    root = os.environ.get(CACHE_ENV, '').strip()
    if root:
        return Path(root).expanduser()
    xdg = os.environ.get('XDG_CACHE_HOME', '').strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / '.cache') / 'alignjax'


def compile_cache(argv=None) -> list[str]:
    """Turn JAX's persistent compilation cache on (before anything compiles) unless `--no-compile-cache` is in
    `argv` or ALIGNJAX_COMPILE_CACHE=0; returns `argv` (default sys.argv[1:]) without that flag.

    The directory is $JAX_COMPILATION_CACHE_DIR when set (JAX reads it itself), else `cache_root()/jax`.
    Programs that took over 0.25 s to compile are kept (JAX's own default is 1 s, which misses most of ours
    on a small CPU). An unwritable cache directory only costs the speed-up: JAX warns and compiles as before.
    `compile_cache_dir()` says which directory is in use (None when off)."""
    args = sys.argv[1:] if argv is None else list(argv)
    off = any(a in NO_CACHE_FLAGS for a in args) or os.environ.get(CACHE_OFF_ENV, '').strip().lower() in _FALSE
    args = [a for a in args if a not in NO_CACHE_FLAGS]
    if off:
        jax.config.update('jax_compilation_cache_dir', None)
        jax.config.update('jax_enable_compilation_cache', False)
        return args
    d = os.environ.get('JAX_COMPILATION_CACHE_DIR') or str(cache_root() / 'jax')
    try:
        Path(d).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(
            f'warning: compile cache {d} cannot be created ({e.strerror or e}); compiling without it', file=sys.stderr
        )
        return args
    jax.config.update('jax_enable_compilation_cache', True)
    jax.config.update('jax_compilation_cache_dir', d)
    if 'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS' not in os.environ:
        jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.25)
    return args


def compile_cache_dir() -> str | None:
    """The persistent compilation cache directory in use (None when it is off)."""
    if not jax.config.jax_enable_compilation_cache:
        return None
    return jax.config.jax_compilation_cache_dir or None


def compiling_note(what: str = 'compiling') -> str:
    """'compiling (first run only, cached in DIR)', or why every run compiles."""
    d = compile_cache_dir()
    if d:
        return f'{what} (first run only, cached in {d})'
    return f'{what} (no persistent compile cache: every run compiles; drop --no-compile-cache / {CACHE_OFF_ENV}=0)'


def entry(fn):
    """Wrap a CLI `main(argv=None)`: an AlignjaxError becomes one `error:` line and exit status 1. Turns the
    compilation cache on first (`compile_cache`), so every CLI gets it."""

    @functools.wraps(fn)
    def main(argv=None):
        try:
            argv = compile_cache(argv)
            return fn(argv)
        except SystemExit:
            raise
        except KeyboardInterrupt:
            if debug_requested(argv):
                raise
            fail('interrupted', 130)
        except AlignjaxError as e:
            if debug_requested(argv):
                raise
            fail(message(e))

    return main


class Command:
    """One program's flags. `cmd.fv` is its FlagValues; `cmd.parse(argv)` parses (see the module doc)."""

    def __init__(self, prog: str, doc: str = ''):
        self.prog, self.doc = prog, (doc or '').strip()
        self.fv = flags.FlagValues()
        self._aliases: list[tuple[str, str]] = []
        flags.DEFINE_boolean('help', False, 'show this help and exit', short_name='h', flag_values=self.fv)
        flags.DEFINE_boolean(
            'debug', False, f'show the traceback of a failure (or set {DEBUG_ENV}=1)', flag_values=self.fv
        )

    def deprecated(self, old: str, new: str):
        """Accept `--old` as an alias of the already-defined `--new` (same type); using it prints a warning."""
        old, new = old.lstrip('-'), new.lstrip('-')
        target = self.fv[new]
        flag = flags.Flag(target.parser, target.serializer, old, None, f'deprecated: use --{new}')
        if isinstance(target, flags.MultiFlag):
            flag = flags.MultiFlag(target.parser, target.serializer, old, None, f'deprecated: use --{new}')
        self.fv[old] = flag
        self._aliases.append((old, new))

    def help_text(self) -> str:
        """Usage, the program's docstring, then every flag with its help and default (aliases hidden)."""
        aliases = dict(self._aliases)
        rows = []
        for name in sorted(n for n in self.fv if self.fv[n].name == n and n not in aliases):
            f = self.fv[name]
            spell = (f'-{f.short_name}, ' if f.short_name else '') + (f'--[no]{name}' if f.boolean else f'--{name}')
            said = 'default' in (f.help or '')
            shown = (
                None if said or f.default is None or f.default is False or f.default in ('', []) else f.default_as_str
            )
            rows.append(f'  {spell}: {f.help}' + (f' (default: {shown})' if shown else ''))
        rows.append(
            f'  --no-compile-cache: do not keep compiled programs in {cache_root() / "jax"} '
            f'(also {CACHE_OFF_ENV}=0; {CACHE_ENV}=DIR moves the cache)'
        )
        return f'usage: {self.prog} [flags]\n\n{self.doc}\n\nflags:\n' + '\n'.join(rows) + '\n'

    def parse(self, argv=None, multi=(), aliases=None) -> types.SimpleNamespace:
        """Parse `argv` (default sys.argv[1:]); --help prints the help and exits 0; a bad or missing flag
        prints one `error:` line and exits 2. Returns flags as attributes and `args.positional`.
        `multi`: names of multi-value flags (DEFINE_multi_string), read by the rule of `spread_values` and
        split on commas (`split_values`); `aliases`: {'--old-token': '--new-token'} replaced first."""
        argv = sys.argv[1:] if argv is None else list(argv)
        multi = {m.lstrip('-') for m in multi}
        if multi or aliases:
            argv = spread_values(argv, multi, aliases or {})
        if any(a in ('-h', '--help', '-help', '--helpfull') for a in argv):
            print(self.help_text())
            raise SystemExit(0)
        self.fv.unparse_flags()
        try:
            rest = self.fv([self.prog, *argv])[1:]
        except flags.Error as e:
            text = ' '.join(str(e).split())
            if isinstance(e, flags.UnrecognizedFlagError) and e.flagname:
                text = f'--{e.flagname}: no such flag (see {self.prog} --help)'
            required = re.search(r'Flag --(\S+) must have a value other than None', text)
            if required:
                text = f'--{required.group(1)} is required (see {self.prog} --help)'
            elif text.startswith('flag --'):
                text = text[len('flag ') :]
            if debug_requested(argv):
                raise
            fail(text, 2)
        for old, new in self._aliases:
            if self.fv[old].present:
                print(f'warning: --{old} is deprecated, use --{new}', file=sys.stderr)
                if not self.fv[new].present:
                    self.fv[new].value = self.fv[old].value
                    self.fv[new].present = self.fv[old].present
        names = [n for n in self.fv if self.fv[n].name == n and n not in dict(self._aliases)]
        values = {n.replace('-', '_'): self.fv[n].value for n in names}
        unknown_opts = [a for a in rest if a.startswith('-') and a != '-']
        if unknown_opts:
            fail(f'{unknown_opts[0]}: unexpected argument (see {self.prog} --help)', 2)
        for name in multi:
            if name in values:
                values[name] = split_values(values[name])
        return types.SimpleNamespace(
            **values, positional=rest, present={n.replace('-', '_') for n in names if self.fv[n].present}
        )


def spread_values(argv, multi, aliases=None) -> list[str]:
    """The multi-value rule: `--images a b c` -> `--images a --images=b --images=c` for the flag names in
    `multi` (argparse's nargs='+' spelling keeps working): the bare arguments after a multi-value flag, up to
    the next flag, are more values of it; the flag may also be repeated. Tokens in `aliases` are replaced
    first; everything after `--` is left as it is."""
    aliases = aliases or {}
    out, current, takes_value = [], None, False
    for i, arg in enumerate(argv):
        if arg == '--':
            out += argv[i:]
            break
        arg = aliases.get(arg, arg)
        if takes_value:  # the value absl reads for `--flag value`
            out.append(arg)
            takes_value = False
        elif arg.startswith('-') and arg != '-':
            name, eq, _ = arg.lstrip('-').partition('=')
            current = name if name in multi else None
            takes_value = current is not None and not eq
            out.append(arg)
        elif current is not None:
            out.append(f'--{current}={arg}')
        else:
            out.append(arg)
    return out


def split_values(values) -> list[str] | None:
    """Comma-separated values of a multi-value flag split (a value naming an existing path is kept whole)."""
    if values is None:
        return None
    out = []
    for v in values:
        if ',' in v and not os.path.exists(v):
            out += [p.strip() for p in v.split(',') if p.strip()]
        else:
            out.append(v)
    return out


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
    bad = [s for s in out if not 0 <= s < 2**32]
    if bad:
        raise CliError(f'{flag} {text!r}: seeds must be in [0, 2**32), got {bad[0]}')
    return out
