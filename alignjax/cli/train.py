"""Train a StyleGAN2 from scratch, or fine-tune a child from any checkpoint alignjax reads.

    alignjax-train --config paper256 --config.data.spec=zip:/data/ffhq256.zip --workdir runs/ffhq
    alignjax-train --config auto --config.data.spec=folder:/data/toons \\
        --config.finetune.init_from=runs/ffhq/final --config.train.augment=ada --workdir runs/toons
    alignjax-train --config configs/paper256.py ...     # a config file (path[:arg] -> get_config(arg)) also works

--config is a preset name (alignjax/configs/presets.py: stylegan2, paper256, paper512, paper1024, auto, demo,
demo_parent, zoo_*) or a config file; it defaults to the demo preset (the demo's own entry point, which also
writes the translation and morph, is alignjax-demo). Every config key can be set with --config.<key>=<value>
(the keys and their defaults are listed below; an unknown key is an error). --workdir defaults to
runs/<config name> under the current directory, and the run says which workdir it uses.

Restarting with the same command continues the run from its newest readable snapshot (bit-exactly); a workdir
holding a run with another config is refused with the keys that differ. --config.resume=False starts afresh
instead (the old run is moved to <workdir>/replaced-<time>/, nothing is deleted).
Ctrl-C or SIGTERM: the current step finishes, a snapshot is written, exit 130 / 143 (a second Ctrl-C aborts at once).
Errors print one `error:` line; --debug (or ALIGNJAX_DEBUG=1) shows the traceback instead.
Multi-host (docs/distributed.md): every process runs the same command with --multihost; jax.distributed finds
the others on Cloud TPU, SLURM and Open MPI by itself, or takes --coordinator=HOST:PORT --num_processes=N
--process_id=I (any of them implies --multihost). The global batch is split over the processes' devices.

Intentionally kept short: the logic is in `alignjax.train.loop` (`train(config, workdir)`, `run(config, workdir)`)
and `alignjax.configs` (`get_config(name)`), which import cleanly in a notebook.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import sys
from pathlib import Path

import jax
from absl import flags, logging
from ml_collections import config_flags

from alignjax.apps.demo import run_demo
from alignjax.cli._common import compile_cache
from alignjax.configs import presets
from alignjax.errors import AlignjaxError
from alignjax.train import distributed
from alignjax.train.config import base_config, flatten, validate_config
from alignjax.train.loop import check_workdir, run

PRESETS_FILE = Path(presets.__file__).resolve()
HELP_FLAGS = ('-h', '--help', '--helpshort', '--helpfull', '-?')
# What a main reports in one line: alignjax's own errors (bad data, a missing or unreadable file, a config
# that cannot work). Anything else -- an XLA shape error, a bug -- keeps its traceback.
USER_ERRORS = (AlignjaxError,)


def _debug(argv) -> bool:
    return os.environ.get('ALIGNJAX_DEBUG', '') not in ('', '0') or '--debug' in argv


def _config_value(argv) -> str:
    """The --config value as the user typed it (default: the demo preset)."""
    for i, a in enumerate(argv):
        if a == '--config' and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith('--config='):
            return a.split('=', 1)[1]
    return presets.DEFAULT


def _as_file(value: str) -> str:
    """A --config value as config_flags reads it: a preset name becomes alignjax/configs/presets.py:<name>."""
    return f'{PRESETS_FILE}:{value}' if value in presets.PRESETS else value


def config_argv(argv) -> list[str]:
    """argv with a preset-name --config rewritten to the presets file (before absl parses it)."""
    out = list(argv)
    for i, a in enumerate(out):
        if a == '--config' and i + 1 < len(out):
            out[i + 1] = _as_file(out[i + 1])
        elif a.startswith('--config='):
            out[i] = '--config=' + _as_file(a.split('=', 1)[1])
    return out


def _config_keys(value: str) -> list[str]:
    """The flattened keys of the config `value` names ([] when it cannot be built)."""
    path, *arg = _as_file(value).split(':', 1)
    spec = importlib.util.spec_from_file_location('_alignjax_train_config', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return list(flatten(mod.get_config(*arg)))


def explain_flag_error(argv, e: BaseException, prog: str) -> str:
    """One line for a failed flag parse: a missing config file or preset, an unknown config key (with close
    matches), or the parser's own message."""
    value = _config_value(argv)
    path = _as_file(value).split(':', 1)[0]
    if not Path(path).is_file():
        if '/' not in path and not path.endswith('.py'):
            return f'--config {value}: no such config file or preset (the presets are {", ".join(presets.PRESETS)})'
        return f'--config {path}: no such config file'
    try:
        keys = _config_keys(value)
    except Exception:  # noqa: BLE001 (the config file itself is broken: report the parser's message)
        keys = []
    for a in argv:
        if a.startswith('--config.'):
            key = a[len('--config.') :].split('=', 1)[0]
            if keys and key not in keys and not any(k.startswith(key + '.') for k in keys):
                close = difflib.get_close_matches(key, keys, n=3, cutoff=0.6)
                hint = (
                    f' (did you mean {", ".join("--config." + c for c in close)}?)'
                    if close
                    else f' ({prog} --help lists the keys)'
                )
                return f'--config.{key}: no such config key{hint}'
    msg = ' '.join(str(e).replace('\\n', ' ').split())
    if len(msg) > 1 and msg[0] == msg[-1] and msg[0] in '\'"':
        msg = msg[1:-1]
    return msg or type(e).__name__


def usage(doc: str) -> str:
    rows = [f'  --config.{k}={v!r}' for k, v in flatten(base_config(), lists=False).items()]
    return (
        doc.rstrip()
        + '\n\nconfig keys (the defaults of alignjax/train/config.py; presets change some):\n'
        + '\n'.join(rows)
        + '\n'
    )


def parse(argv, prog: str, doc: str) -> flags.FlagValues:
    """The program's flags (a private FlagValues: mains can run one after another in one process), parsed from
    argv (argv[0] is the program). A bad flag or config prints one `error:` line and exits 2."""
    args = argv[1:]
    fv = flags.FlagValues()
    flags.DEFINE_string(
        'workdir',
        None,
        'output directory (checkpoints, samples, metrics, final model); default runs/<config name>',
        flag_values=fv,
    )
    flags.DEFINE_bool(
        'multihost',
        False,
        'initialise jax.distributed (TPU pods, multi-node GPU): auto-detected '
        'on Cloud TPU, SLURM and Open MPI, or from the three flags below',
        flag_values=fv,
    )
    flags.DEFINE_string(
        'coordinator', None, 'multi-host: HOST:PORT of process 0 (every process passes the same)', flag_values=fv
    )
    flags.DEFINE_integer('num_processes', None, 'multi-host: the number of processes', flag_values=fv)
    flags.DEFINE_integer('process_id', None, 'multi-host: this process (0 .. num_processes-1)', flag_values=fv)
    flags.DEFINE_integer(
        'heartbeat_timeout',
        60,
        'multi-host: seconds without heartbeats after which a process counts as dead and JAX stops the others',
        flag_values=fv,
    )
    flags.DEFINE_bool(
        'debug', False, 'show tracebacks instead of one-line errors (also ALIGNJAX_DEBUG=1)', flag_values=fv
    )
    if any(a in HELP_FLAGS for a in args):
        print(
            usage(doc)
            + '\nflags:\n'
            + fv.get_help(include_special_flags=False)
            + '\n  --no-compile-cache: do not keep compiled programs (also ALIGNJAX_COMPILE_CACHE=0)'
        )
        sys.exit(0)
    rewritten = config_argv(argv)
    try:
        # With its default, config_flags loads the config and applies the --config.* overrides right here.
        config_flags.DEFINE_config_file(
            'config',
            _as_file(presets.DEFAULT),
            'a preset name or a config file (path[:arg]); default: the demo',
            flag_values=fv,
            lock_config=True,
            sys_argv=rewritten,
        )
        fv(rewritten)
        fv.config.keys()  # config_flags defers a config file's load error to the first access
    except Exception as e:  # noqa: BLE001 (an unknown key, a bad value, a broken or missing config file)
        if _debug(args):
            raise
        sys.stderr.write(f'error: {explain_flag_error(args, e, prog)}\n')
        sys.exit(2)
    if not flags.FLAGS.is_parsed():  # libraries that read absl flags find them parsed (as under app.run)
        flags.FLAGS.mark_as_parsed()
    return fv


def main(argv=None, *, job=None, prog: str = 'alignjax-train', doc: str = __doc__):
    """The training command line over `argv` (default sys.argv[1:]; as every alignjax CLI, without the program
    name). `job(config, workdir)` runs the parsed config (default: `run`, or `run_demo`
    when the config sets demo_outputs); exits 130 / 143 when a signal stopped it. Returns None (a console
    script exits with what main returns)."""
    argv = [prog, *compile_cache(argv)]  # the persistent compilation cache (--no-compile-cache: off)
    fv = parse(argv, prog, doc)
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    debug = fv.debug or _debug(argv[1:])
    config = fv.config
    workdir = fv.workdir
    if workdir is None:
        workdir = f'runs/{config.name}'
        print(
            f'workdir: {Path(workdir).absolute()} (no --workdir given: runs/<config name>; a run already there '
            f'is continued)',
            flush=True,
        )
    job = job or (run_demo if config.demo_outputs else run)
    try:
        validate_config(config)  # before jax starts or any data is read
        check_workdir(workdir)
        if fv.multihost or any(v is not None for v in (fv.coordinator, fv.num_processes, fv.process_id)):
            distributed.initialize(
                fv.coordinator, fv.num_processes, fv.process_id, heartbeat_timeout_s=fv.heartbeat_timeout
            )
        try:
            results = job(config, workdir)
        except USER_ERRORS:
            raise
        except Exception as e:  # a collective or barrier that failed outside the loop's own checks
            peer = distributed.peer_failure(e)  # (None in a single process, or for any other error)
            if peer is None:
                raise
            raise peer from e
    except KeyboardInterrupt:  # Ctrl-C before training started (during it, the loop handles SIGINT itself)
        if debug:
            raise
        sys.stderr.write('error: interrupted before training started; nothing was saved\n')
        sys.exit(130)
    except USER_ERRORS as e:
        if debug and not isinstance(e, distributed.DistributedError):
            raise
        msg = ' '.join(str(e).split('\n'))
        if jax.process_count() > 1 and isinstance(e, distributed.DistributedError):
            distributed.die(msg)  # a lost peer: leave now (JAX's shutdown barrier would wait for the dead one)
        sys.stderr.write(f'error: {msg}\n')
        sys.exit(1)
    stopped = results.get('stopped') or (results.get('main') or {}).get('stopped')
    if stopped:
        sig = stopped['signal'] if isinstance(stopped, dict) else stopped
        sys.exit(130 if sig == 'SIGINT' else 143)


if __name__ == '__main__':
    main()
