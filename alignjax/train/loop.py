"""The training loop: data, models (fresh or fine-tuned from any checkpoint), the jitted data-parallel step,
orbax checkpoints with exact resume, progress, metrics, sample grids and the final export.

    summary = train(config, workdir)        # one run
    run(config, workdir)                    # a run, or every stage of config.stages (e.g. parent -> child)

Layout of a workdir:
    checkpoints/<step>/   orbax CheckpointManager: train state, data-iterator state, metadata incl. the run's
                          config (keep K); an unreadable one is moved aside to <step>.corrupt-<time>
    samples/grid_<images seen>.png   G_ema on fixed latents (and grid_init.png)
    metrics.jsonl         one line per tick (cut back to the snapshot's step on resume)
    final/                the final G, G_ema and D (load with `alignjax.load_checkpoint`)

Faults (tests/test_faults.py): SIGKILL anywhere resumes from the last committed snapshot; SIGINT/SIGTERM finish
the step, snapshot and stop (a second SIGINT aborts at once); an unreadable snapshot is moved aside and the next
older one used; a full disk names the path, the snapshot lost and the one kept; a workdir holding a run with
another config is refused with the keys that differ.

Multi-host (docs/distributed.md): every process runs the same `train`; `multihost=` (or the CLI's --multihost)
connects them through `jax.distributed` first. Process 0 alone writes logs, metrics.jsonl, sample grids and the
final export's metadata; snapshots and the final export's arrays are written collectively, as orbax expects.
Each process reads its own block of every global batch (the loader's `global_batches` layout), and a snapshot
holds every process's iterator state, so a resume on the same topology continues each host's iterator
exactly; on another topology (2 processes x 2 devices -> 1 x 4 or 1 x 1) the global stream continues at image
`nimg` (the same global batches, in the same order).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import re
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from alignjax import vis
from alignjax.data import make_dataset, make_loader
from alignjax.data.loader import state_at
from alignjax.errors import AlignjaxError
from alignjax.io.checkpoint import Checkpoint, load_checkpoint
from alignjax.model import Generator, new_discriminator, new_generator
from alignjax.nn.networks import DiscriminatorConfig, GeneratorConfig, Impl
from alignjax.train import distributed as dist
from alignjax.train import step as S
from alignjax.train.config import (
    ConfigError,
    apply_overrides,
    config_differences,
    from_section,
    model_configs,
    validate_config,
)
from alignjax.train.faults import Faults


class TrainingDiverged(AlignjaxError, RuntimeError):
    """A loss became NaN/Inf; the last good checkpoint is kept."""


class ResumeError(AlignjaxError):
    """The workdir's snapshots cannot be resumed: all unreadable, or made for another model/config."""


class DiskFull(AlignjaxError, OSError):
    """The disk filled up while writing; says where, what was lost and which snapshot is kept."""


class WorkdirError(AlignjaxError, OSError):
    """The workdir cannot be created or written."""


def log(msg: str):
    if jax.process_index() == 0:
        print(msg, flush=True)


# ----------------------------------------------------------------------------------------------------------
# Config resolution (NVlabs train.py semantics for 'auto' values, written as -1).


def resolve_config(config, resolution: int, num_devices: int):
    """Fill the -1 ('auto') fields as NVlabs' `auto` config does; returns a new, resolved config."""
    cfg = config.copy_and_resolve_references() if hasattr(config, 'copy_and_resolve_references') else config
    t, m = cfg.train, cfg.model
    if t.batch == -1:
        t.batch = max(min(num_devices * min(4096 // resolution, 32), 64), num_devices)
    if m.mbstd_group_size == -1:
        m.mbstd_group_size = min(t.batch // num_devices, 4)
    if m.channel_base == -1:
        m.channel_base = int((1 if resolution >= 512 else 0.5) * 32768)
    if t.g_lr == -1:
        t.g_lr = 0.002 if resolution >= 1024 else 0.0025
    if t.d_lr == -1:
        t.d_lr = t.g_lr
    if t.r1_gamma == -1:
        t.r1_gamma = 0.0002 * resolution**2 / t.batch
    if t.ema_kimg == -1:
        t.ema_kimg = t.batch * 10 / 32
    return cfg


def freeze_d_patterns(d_cfg: DiscriminatorConfig, k: int) -> list[str]:
    """FreezeD: the first k discriminator blocks, from the image side."""
    return [rf'^b{r}/' for r in d_cfg.block_resolutions[:k]]


def build_models(config, resolution: int, c_dim: int, key):
    """(g_cfg, d_cfg, G vars, G_ema vars, D vars, notes, ada_p), fresh or from config.finetune.init_from."""
    m = config.model
    notes: list[str] = []
    impl = from_section(Impl, m.impl)
    k_g, k_d = jax.random.split(key)
    src = config.finetune.init_from
    if src:
        ck = load_checkpoint(src)
        notes += [f'{src}: {n}' for n in ck.notes]
        g_cfg = ck.g_config.replace(impl=impl)
        if g_cfg.resolution != resolution:
            raise ConfigError(
                f'{src} is a {g_cfg.resolution}x{g_cfg.resolution} model but the data is '
                f'{resolution}x{resolution}; set --config.data.resolution={g_cfg.resolution}'
            )
        if g_cfg.c_dim != c_dim:
            raise ConfigError(f'{src} has c_dim={g_cfg.c_dim} but the dataset has {c_dim} label dims')
        g_ema = ck.nets.get('G_ema') or ck.nets.get('G')
        g = ck.nets.get('G') or g_ema
        if 'G' not in ck.nets:
            notes.append(f'{src} has no training copy G: starting G from G_ema')
        if 'D' in ck.nets and ck.d_config is not None:
            d_cfg = ck.d_config.replace(impl=impl, mbstd_group_size=ck.d_config.mbstd_group_size)
            d = ck.nets['D']
        else:
            # a fresh D of config.model's discriminator settings, shaped and clamped like the loaded G (as
            # NVlabs builds both from one set of kwargs)
            d_cfg = model_configs(config, resolution, c_dim)[1].replace(
                img_channels=g_cfg.img_channels,
                channel_base=g_cfg.channel_base,
                channel_max=g_cfg.channel_max,
                conv_clamp=g_cfg.conv_clamp,
                resample_filter=g_cfg.resample_filter,
            )
            d = new_discriminator(k_d, config=d_cfg).variables
            notes.append(f'{src} has no discriminator: D starts from a fresh random initialisation')
        ada_p = float(ck.extra.get('augment_p', 0.0) or 0.0)
        return g_cfg, d_cfg, g, g_ema, d, notes, ada_p
    g_cfg, d_cfg = model_configs(config, resolution, c_dim)
    g = new_generator(k_g, config=g_cfg).variables
    d = new_discriminator(k_d, config=d_cfg).variables
    return g_cfg, d_cfg, g, g, d, notes, 0.0


# ----------------------------------------------------------------------------------------------------------
# Checkpointing.


def _manager(workdir: Path, keep: int):
    import orbax.checkpoint as ocp  # (lazy: orbax takes ~1.5 s to import, and only the loop needs it)

    opts = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=False)
    return ocp.CheckpointManager(workdir / 'checkpoints', options=opts, item_names=('state', 'data', 'meta'))


@contextlib.contextmanager
def _quiet_writer_threads():
    """orbax/tensorstore threads log every failed write (with tracebacks) on top of the exception the save
    raises; the loop reports that exception itself, in one line."""
    loggers = [logging.getLogger(n) for n in ('absl', 'asyncio')]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    except BaseException:
        logging.getLogger('asyncio').setLevel(logging.CRITICAL)  # its failed tasks are reported when collected
        raise
    else:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


def _save(mgr, state: S.TrainState, data: dict, meta: dict):
    """A snapshot (collective: every process calls it; orbax writes the replicated arrays and the JSON items
    from process 0)."""
    import orbax.checkpoint as ocp

    step = int(state.step)
    # Host copies (the state is replicated): the snapshot then holds plain arrays without the mesh's sharding
    # metadata, so `aj.load_checkpoint` reads it on any machine (orbax refuses a jax.Array tree saved by another
    # topology unless given a target) and the loop restores it onto any mesh.
    state = jax.device_get(state)
    with _quiet_writer_threads():
        mgr.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data), meta=ocp.args.JsonSave(meta)
            ),
            force=True,
        )
        mgr.wait_until_finished()


def _restore(mgr, step: int, abstract_state):
    import orbax.checkpoint as ocp

    out = mgr.restore(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore(), meta=ocp.args.JsonRestore()
        ),
    )
    return out['state'], out['data'], out['meta']


def _restore_meta(mgr, step: int) -> dict:
    import orbax.checkpoint as ocp

    meta = mgr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))['meta']
    if not isinstance(meta, dict) or 'config' not in meta:
        raise ValueError('its metadata holds no config')
    return meta


def _one_line(e: BaseException, limit: int = 300) -> str:
    msg = ' '.join(str(e).split(' [tensorstore_spec')[0].split()) or type(e).__name__
    return msg if len(msg) <= limit else msg[: limit - 3] + '...'


def _stamp() -> str:
    return time.strftime('%Y%m%d-%H%M%S')


def _committed_steps(ckpt_dir: Path) -> list[int]:
    """Committed snapshot steps on disk, newest first (orbax names them by the bare step number)."""
    if not ckpt_dir.is_dir():
        return []
    return sorted((int(p.name) for p in ckpt_dir.iterdir() if p.is_dir() and p.name.isdigit()), reverse=True)


def _remove_temporaries(workdir: Path) -> list[str]:
    """Half-written snapshots/exports left by a crash (never read; removed so they cannot fill the disk)."""
    gone = []
    for pattern, parent in (
        ('*.orbax-checkpoint-tmp*', workdir / 'checkpoints'),
        ('.final.tmp-*', workdir),
        ('metrics.jsonl.tmp', workdir),
    ):
        if parent.is_dir():
            for p in parent.glob(pattern):
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
                gone.append(p.name)
    return gone


def _model_differences(meta: dict, now: dict) -> list[tuple[str, Any, Any]]:
    diffs = config_differences(meta.get('config') or {}, now['config'])
    if diffs:
        return diffs
    for net in ('g_config', 'd_config'):  # what an init_from checkpoint decides (shapes)
        old, new = dict(meta.get(net) or {}), dict(now[net] or {})
        old.pop('impl', None), new.pop('impl', None)
        if old and new:
            diffs += [(f'{net}.{k}', a, b) for k, a, b in config_differences(old, new, ignore=())]
    return diffs


def _restore_newest_good(workdir: Path, keep: int, abstract, meta_now: dict):
    """(state, data_state, step) from the newest readable snapshot, or None without any.

    A snapshot that cannot be read is moved aside to `<step>.corrupt-<time>` (said, with the reason) and the next
    older one tried; when none is readable the error names them all. A snapshot written with another config is
    not corrupt: that raises ResumeError naming the differing keys and the two ways out."""
    ckpt_dir = workdir / 'checkpoints'
    bad = []
    while True:
        steps = _committed_steps(ckpt_dir)
        if not steps:
            if bad:
                raise ResumeError(
                    f'no readable snapshot in {ckpt_dir}: '
                    + '; '.join(f'{step} ({why}; moved to {moved})' for step, why, moved in bad)
                    + '. Start afresh with --config.resume=False or use another --workdir'
                )
            return None
        step = steps[0]
        try:
            mgr = _manager(workdir, keep)
            meta = _restore_meta(mgr, step)
        except Exception as e:  # orbax/tensorstore/JSON raise many types: any of them means unreadable
            bad.append((step, _one_line(e), _move_aside(ckpt_dir, step)))
            log(f'warning: snapshot {ckpt_dir}/{step} is unreadable ({bad[-1][1]}); moved it to {bad[-1][2]}')
            continue
        diffs = _model_differences(meta, meta_now)
        if diffs:
            shown = '; '.join(f'{k}: {_show(a)} in the workdir, {_show(b)} now' for k, a, b in diffs[:8])
            more = f' and {len(diffs) - 8} more' if len(diffs) > 8 else ''
            raise ResumeError(
                f'{workdir} holds a run with another config (snapshot {step}): {shown}{more}. Use a '
                f'new --workdir for this config, or pass --config.resume=False to start afresh here '
                f'(the old run is moved to {workdir}/replaced-<time>/)'
            )
        try:
            state, data_state, _ = _restore(mgr, step, abstract)
            return state, data_state, step
        except Exception as e:
            why = _one_line(e)
            if 'not compatible with the stored shape' in why:
                raise ResumeError(
                    f'snapshot {ckpt_dir}/{step} does not fit this model although its config '
                    f'matches ({why}); use a new --workdir or --config.resume=False'
                ) from None
            bad.append((step, why, _move_aside(ckpt_dir, step)))
            log(f'warning: snapshot {ckpt_dir}/{step} is unreadable ({why}); moved it to {bad[-1][2]}')


def _show(v):
    return json.dumps(v) if isinstance(v, str) else v


def _move_aside(ckpt_dir: Path, step: int) -> Path:
    """Rename an unreadable snapshot out of the way (process 0 does it; every process waits for it)."""
    if not dist.is_main():
        dist.sync(f'alignjax:moved-aside-{step}')
        return ckpt_dir / f'{step}.corrupt-<time>'
    dst = _move_aside_now(ckpt_dir, step)
    dist.sync(f'alignjax:moved-aside-{step}')
    return dst


def _move_aside_now(ckpt_dir: Path, step: int) -> Path:
    dst = ckpt_dir / f'{step}.corrupt-{_stamp()}'
    i = 1
    while dst.exists():
        dst, i = ckpt_dir / f'{step}.corrupt-{_stamp()}-{i}', i + 1
    os.rename(ckpt_dir / str(step), dst)
    return dst


def _replace_old_run(workdir: Path) -> Path | None:
    """--config.resume=False in a workdir that holds a run: move that run's checkpoints, metrics and samples to
    workdir/replaced-<time>/ (nothing is deleted)."""
    items = [workdir / n for n in ('checkpoints', 'metrics.jsonl', 'samples', 'final') if (workdir / n).exists()]
    if not (workdir / 'checkpoints').exists() or not _committed_steps(workdir / 'checkpoints'):
        return None
    dst = workdir / f'replaced-{_stamp()}'
    dst.mkdir()
    for p in items:
        os.rename(p, dst / p.name)
    return dst


def _truncate_metrics(path: Path, step: int) -> int:
    """Keep metrics.jsonl rows up to `step` (the rows after a snapshot are recomputed on resume); returns the
    number of rows dropped (a torn last line counts)."""
    if not path.exists():
        return 0
    lines = path.read_text().splitlines()
    keep = []
    for line in lines:
        try:
            if int(json.loads(line)['step']) <= step:
                keep.append(line)
        except (ValueError, KeyError, TypeError):
            pass
    if len(keep) != len(lines):
        tmp = path.with_name(path.name + '.tmp')
        tmp.write_text(''.join(line + '\n' for line in keep))
        os.replace(tmp, path)
    return len(lines) - len(keep)


def check_workdir(workdir) -> Path:
    """Create `workdir` and prove it writable, before any data is read or anything compiled."""
    workdir = Path(workdir).absolute()
    probe = workdir / f'.write-test-{os.getpid()}'
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b'')
        probe.unlink()
    except OSError as e:
        raise WorkdirError(f'workdir {workdir} is not writable ({e.strerror or e}); choose another --workdir') from None
    return workdir


def _disk_full(e: BaseException) -> str | None:
    """The path tensorstore/the OS failed to write when `e` (or its cause) is 'no space left', else None."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        msg = str(e)
        if (
            (isinstance(e, OSError) and e.errno == errno.ENOSPC)
            or 'RESOURCE_EXHAUSTED' in msg
            or 'No space left' in msg
        ):
            m = re.search(r'(?:writing|opening|creating)(?: local)? file "([^"]+)"', msg)
            return m.group(1) if m else (getattr(e, 'filename', None) or '')
        e = e.__cause__ or e.__context__
    return None


def _mount_point(path: Path) -> Path:
    path = path.absolute()
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def _final_checkpoint(state: S.TrainState, g_cfg, d_cfg, meta, finished: bool = True) -> Checkpoint:
    host = lambda t: jax.tree_util.tree_map(np.asarray, jax.device_get(t))
    nets = {'G': host(state.g), 'G_ema': host(state.g_ema), 'D': host(state.d)}
    return Checkpoint(
        g_cfg,
        d_cfg,
        nets,
        source='alignjax train',
        format='orbax',
        notes=[],
        extra={
            'augment_p': float(state.ada.p),
            'kimg': int(state.nimg) / 1000,
            'config': meta.get('config'),
            'finished': finished,
        },
    )


class _StopSignals:
    """SIGINT (Ctrl-C) and SIGTERM while training: the first asks the loop to stop after the current step (it
    writes a snapshot and says where); a second SIGINT aborts at once, exit 130, without a traceback."""

    def __init__(self):
        self.name = None
        self._prev = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._prev[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.name is None:
            self.name = name
            hint = ' (Ctrl-C again aborts at once)' if signum == signal.SIGINT else ''
            os.write(1, f'\n{name}: stopping after this step and writing a snapshot{hint}\n'.encode())
        elif signum == signal.SIGINT:
            os.write(2, b'\naborted by a second Ctrl-C: nothing saved since the last snapshot\n')
            os._exit(130)

    def __exit__(self, *exc):
        for sig, prev in self._prev.items():
            signal.signal(sig, prev)
        return False


# The jitted step programs of a (model, hyper-parameters, devices) combination, kept for the next train() call
# in this process (tests, notebooks, stages resumed in one process): tracing is most of a tiny run's time.
_STEP_FNS: dict = {}


def _step_fns(g_cfg, d_cfg, hp) -> S.StepFns:
    key = (g_cfg, d_cfg, hp, tuple(jax.devices()))
    if key not in _STEP_FNS:
        while len(_STEP_FNS) >= 2:
            _STEP_FNS.pop(next(iter(_STEP_FNS)))
        _STEP_FNS[key] = S.StepFns(g_cfg, d_cfg, hp)
    return _STEP_FNS[key]


# ----------------------------------------------------------------------------------------------------------
# The run.


def _grid_latents(config, g_cfg: GeneratorConfig, ds):
    n = int(config.log.grid_size)
    z = np.random.RandomState(int(config.log.grid_seed)).randn(n, g_cfg.z_dim).astype(np.float32)
    c = None
    if g_cfg.c_dim:
        c = np.stack([ds[i % len(ds)]['label'] for i in range(n)]).astype(np.float32)
    return z, c


def _save_grid(path, gen: Generator, z, c, cols):
    img = np.asarray(gen.synthesis(gen.mapping(z, c), noise_mode='const'))
    vis.save_png(path, vis.grid(vis.to_uint8(img), cols=cols))


def _start_multihost(multihost, say: bool = True):
    """`multihost`: False/None (a single process, unless jax.distributed is already up), True (JAX's
    auto-detection: Cloud TPU, SLURM, Open MPI) or a dict of `distributed.initialize` arguments."""
    if multihost:
        dist.initialize(**(multihost if isinstance(multihost, dict) else {}))
    if say and jax.process_count() > 1:
        log(
            f'multi-host: {jax.process_count()} processes, {jax.device_count()} {jax.devices()[0].platform} '
            f'devices ({jax.local_device_count()} per process); process 0 writes logs, metrics, grids and final/'
        )


def _host_block(fns: S.StepFns, batch: int, local_batch: int) -> int:
    """Which block of `local_batch` rows of the global batch this process's devices hold on the mesh (the
    rows `make_array_from_process_local_data` fills from this process's data)."""
    rows = set()
    for idx in fns.data_sharding.addressable_devices_indices_map((batch,)).values():
        sl = idx[0] if idx else slice(None)
        rows.update(range(*sl.indices(batch)))
    lo = min(rows)
    if rows != set(range(lo, lo + local_batch)) or lo % local_batch:
        raise ConfigError(
            f'process {jax.process_index()} holds rows {sorted(rows)} of the global batch {batch}: '
            f'not one contiguous block of {local_batch}'
        )
    return lo // local_batch


def _data_layout(loader, batch: int) -> dict:
    lay = loader.layout
    return dict(
        order='global_batches',
        batch=int(batch),
        processes=lay['shard_count'],
        local_batch=lay['batch_size'],
        workers=lay['worker_count'],
    )


def _data_item(loader, batch: int, nimg: int) -> dict:
    """The snapshot's data item: every process's iterator state (gathered: a collective), the layout that
    produced them and the global stream position (images consumed)."""
    mine = json.dumps({'block': loader.layout['shard_index'], 'state': loader.get_state().decode()}).encode()
    hosts = sorted((json.loads(h) for h in dist.allgather_bytes(mine)), key=lambda h: h['block'])
    return {
        'iterator': hosts[0]['state'],
        'hosts': [h['state'] for h in hosts],
        'layout': _data_layout(loader, batch),
        'position': int(nimg),
    }


def _restore_data(loader, data: dict, batch: int, nimg: int, step: int) -> str | None:
    """Put `loader` where the restored snapshot's data stream stood; returns a note when the topology changed."""
    lay, saved = _data_layout(loader, batch), data.get('layout')
    hosts = data.get('hosts') or []
    if saved == lay and len(hosts) == lay['processes']:
        loader.set_state(hosts[loader.layout['shard_index']].encode())  # the same topology: exactly as saved
        return None
    if nimg % batch:
        raise ResumeError(f'snapshot {step}: {nimg} images is not a whole number of global batches of {batch}')
    loader.set_state(state_at(loader, nimg // batch))
    if saved is None:
        was = 'a snapshot without a data layout (older alignjax)'
    else:
        was = f'{saved["processes"]} process(es) x {saved["local_batch"]} images, {saved["workers"]} loader workers'
    return (
        f'data: snapshot {step} was written by {was}; now {lay["processes"]} process(es) x '
        f'{lay["local_batch"]} images, {lay["workers"]} workers: the global stream continues at image {nimg} '
        f'(global batch {nimg // batch}, the same batches in the same order)'
    )


def _host(tree):
    """Host copies of (replicated) global arrays: what process 0 alone may compute with (a sample grid) in a
    multi-process run, where a jitted function over global arrays is a collective."""
    return jax.device_get(tree) if jax.process_count() > 1 else tree


def _export_final_collective(final: Checkpoint, path: Path, step: int):
    """final/ in a multi-process run: orbax writes the arrays collectively (every process calls it), process 0
    the metadata and the atomic rename (as `Checkpoint.save` does in one process)."""
    import orbax.checkpoint as ocp

    from alignjax.io import store

    tmp = path.parent / f'.{path.name}.tmp-step{step}'
    if dist.is_main() and tmp.exists():
        shutil.rmtree(tmp)
    dist.sync('alignjax:final-start')
    state = jax.tree_util.tree_map(np.asarray, final.nets)
    with ocp.StandardCheckpointer() as cp:
        cp.save(tmp / 'state', state)
        cp.wait_until_finished()
    if dist.is_main():
        meta = dict(
            format_version=store.FORMAT_VERSION,
            nets=sorted(final.nets),
            g_config=final.g_config.to_dict(),
            d_config=None if final.d_config is None else final.d_config.to_dict(),
            source=str(final.source),
            source_format=final.format,
            notes=list(final.notes),
            extra=store._jsonable(dict(final.extra)),
        )
        (tmp / store.CONFIG_NAME).write_text(json.dumps(meta, indent=1))
        if path.exists():
            old = path.parent / f'.{path.name}.old-step{step}'
            os.rename(path, old)
            os.rename(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, path)
    dist.sync('alignjax:final-done')


def train(config, workdir, *, export_on_stop: bool = True, multihost=None) -> dict:
    """Train (or fine-tune) one model as `config` says, in `workdir`. Returns a summary dict; `summary['stopped']`
    is 'SIGINT'/'SIGTERM' when a signal stopped it (a snapshot is written; with `export_on_stop`, final/ too).
    `multihost`: True (jax.distributed auto-detection) or `distributed.initialize` arguments; every process of a
    multi-host run calls `train` with the same config and workdir (docs/distributed.md)."""
    validate_config(config)
    workdir = check_workdir(workdir)  # orbax wants absolute paths
    _start_multihost(multihost)
    faults = Faults()
    res = int(config.data.resolution)
    config = resolve_config(config, res, jax.device_count())
    gone = _remove_temporaries(workdir) if jax.process_index() == 0 else []
    dist.sync('alignjax:cleaned')
    if gone:
        log(f'note: removed what a crash left half-written in {workdir}: {", ".join(sorted(gone))}')
    try:
        ds = make_dataset(
            config.data.spec,
            res,
            xflip=bool(config.data.xflip),
            bad_file_policy=config.data.bad_file_policy,
            in_memory=config.data.in_memory,
            max_images=config.data.max_images,
        )
    except ValueError as e:
        if isinstance(e, AlignjaxError):
            raise
        raise ConfigError(f'--config.data.spec={config.data.spec!r}: {e}') from e
    key = jax.random.key(int(config.seed))
    k_model, k_train = jax.random.split(key)
    g_cfg, d_cfg, g_vars, g_ema_vars, d_vars, notes, ada_p = build_models(config, res, ds.c_dim, k_model)
    if config.finetune.freeze_d:
        config.finetune.freeze_d_regex = tuple(config.finetune.freeze_d_regex or ()) + tuple(
            freeze_d_patterns(d_cfg, int(config.finetune.freeze_d))
        )
    for n in notes:
        log(f'note: {n}')
    hp = S.TrainHParams.from_config(config)
    if hp.batch % jax.process_count():
        raise ConfigError(f'global batch {hp.batch} must be divisible by the host count {jax.process_count()}')
    local_batch = hp.batch // jax.process_count()
    fns = _step_fns(g_cfg, d_cfg, hp)
    g_tx, d_tx = fns.optimizers(g_vars['params'], d_vars['params'])
    # Multi-host: placing the state is the first collective (JAX checks the hosts' copies agree), and a gloo
    # collective fails when the processes arrive more than 30 s apart -- they do when one built the models
    # from the persistent compilation cache and another compiled them. A barrier lines them up first.
    dist.sync('alignjax:models-built')
    state = fns.place(
        S.init_state(
            k_train, g_vars, d_vars, g_ema_vars, g_tx, d_tx, ada_p=ada_p if config.train.augment == 'ada' else 0.0
        )
    )
    loader = make_loader(
        faults.wrap_source(ds),
        batch_size=local_batch,
        seed=int(config.seed),
        shard_index=_host_block(fns, hp.batch, local_batch),
        shard_count=jax.process_count(),
        worker_count=int(config.data.workers),
        global_batches=True,
    )
    meta = {
        'config': json.loads(config.to_json_best_effort()),
        'g_config': g_cfg.to_dict(),
        'd_config': d_cfg.to_dict(),
        'dataset': ds.name,
        'resolution': res,
    }

    keep = int(config.log.keep)
    metrics_path = workdir / 'metrics.jsonl'
    restored = None
    if not config.resume and _committed_steps(workdir / 'checkpoints'):
        moved = _replace_old_run(workdir) if jax.process_index() == 0 else None
        dist.sync('alignjax:replaced')
        log(f'note: --config.resume=False: starting afresh in {workdir}; the run that was there is now in {moved}')
    else:
        abstract = jax.tree_util.tree_map(
            lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=fns.replicated), state
        )
        restored = _restore_newest_good(workdir, keep, abstract, meta)
    mgr = _manager(workdir, keep)
    if restored is not None:
        state, data_state, step = restored
        note = _restore_data(loader, data_state, hp.batch, int(state.nimg), step)
        if note:
            log(f'note: {note}')
        log(
            f'resumed from {workdir}/checkpoints/{int(state.step)} (kimg {int(state.nimg) / 1000:.3f}; '
            f'--config.resume=False would start afresh)'
        )
    dropped = _truncate_metrics(metrics_path, int(state.step)) if jax.process_index() == 0 else 0
    if dropped:
        log(
            f'note: {metrics_path}: dropped {dropped} row(s) written after step {int(state.step)} (they are recomputed)'
        )

    total_img = int(round(float(config.train.kimg) * 1000))
    tick_img = max(int(float(config.log.tick_kimg) * 1000), 1)
    snap_img = max(int(float(config.log.snapshot_kimg) * 1000), 1)
    grid_img = max(int(float(config.log.grid_kimg) * 1000), 1)
    kill_at = int(config.debug.kill_at_step) if config.debug.kill_at_step else None
    grid_z, grid_c = _grid_latents(config, g_cfg, ds)
    cols = int(config.log.grid_cols)
    (workdir / 'samples').mkdir(exist_ok=True)

    # Host-side counters: the loop never reads the device state back per step, so steps are dispatched ahead.
    # Metrics stay on the device and are fetched (and checked for NaN/Inf) at each tick, grid and snapshot --
    # always before a save, so a checkpoint never holds a diverged state.
    nimg, host_step = int(state.nimg), int(state.step)
    saved = (host_step, nimg) if restored is not None else None  # the last committed snapshot (step, nimg)
    last_tick, last_snap, last_grid = nimg // tick_img, nimg // snap_img, nimg // grid_img
    t_tick, img_tick, acc, pending = time.time(), nimg, {}, []
    first_step_time = None
    writing = 'the first sample grid'
    target = None

    def flush():
        """Fetch pending metrics; raise on non-finite values (nothing is saved after them)."""
        for i, m in enumerate(jax.device_get(pending)):
            m = {k: float(v) for k, v in m.items()}
            bad = [k for k, v in m.items() if not math.isfinite(v)]
            if bad:
                step_bad = host_step - len(pending) + i + 1
                raise TrainingDiverged(
                    f'non-finite {bad} at step {step_bad}; stopped without saving. Last good '
                    f'checkpoint: step {mgr.latest_step()} in {workdir}/checkpoints'
                )
            for k, v in m.items():
                acc.setdefault(k, []).append(v)
            pbar.set_postfix(G=f'{m["loss_G"]:.3f}', D=f'{m["loss_D"]:.3f}', p=f'{m["ada_p"]:.3f}', refresh=False)
        pending.clear()

    def snapshot():
        nonlocal saved
        with faults.snapshot(host_step, workdir / 'checkpoints'):
            _save(mgr, state, _data_item(loader, hp.batch, nimg), meta)
        saved = (host_step, nimg)

    def kept():
        if saved is None:
            return 'no snapshot was committed yet'
        return f'the last good snapshot, {workdir}/checkpoints/{saved[0]} (kimg {saved[1] / 1000:.3f}), is kept'

    log(_compiling_note())
    pbar = _progress(total_img, nimg)
    try:
        with _StopSignals() as stop:
            pbar.set_description('compiling', refresh=True)
            if nimg == 0:
                if dist.is_main():
                    _save_grid(
                        workdir / 'samples' / 'grid_init.png',
                        Generator(g_cfg, _host(state.g_ema)),
                        grid_z,
                        grid_c,
                        cols,
                    )
            multi = jax.process_count() > 1
            if multi:  # every process compiles, then all start the first (collective) step together
                fns.precompile(state, (hp.batch, res, res, 3), ds.c_dim)
                dist.sync('compiled')
            halt = False  # multi-host: the processes agree on a signal at each tick, snapshot and the end
            while nimg < total_img and not halt:
                batch = next(loader)
                t0 = time.time()
                images, labels = fns.shard_batch((batch['image'], batch['label']))
                state, metrics = fns.step(state, images, labels, host_step)
                pending.append(metrics)
                host_step += 1
                nimg += hp.batch
                faults.after_step(host_step)
                first = first_step_time is None
                if first:
                    jax.block_until_ready(state)
                    first_step_time = time.time() - t0
                if first:  # the first step's time is compiling: rates and the ETA count from here
                    _restart_clock(pbar, pbar.n + hp.batch)
                    pbar.write(
                        f'first step: {first_step_time:.1f} s (mostly compiling); the rate and ETA count from here'
                    )
                else:
                    pbar.update(hp.batch)
                done = nimg >= total_img
                tick, grid = nimg // tick_img > last_tick, nimg // grid_img > last_grid
                snap = nimg // snap_img > last_snap
                if tick or grid or snap or done:
                    flush()
                if tick or done:
                    last_tick = nimg // tick_img
                    dt = time.time() - t_tick
                    rec = dict(
                        kimg=nimg / 1000,
                        step=host_step,
                        sec_per_kimg=dt / max((nimg - img_tick) / 1000, 1e-9),
                        img_per_s=(nimg - img_tick) / max(dt, 1e-9),
                        **{k: float(np.mean(v)) for k, v in acc.items()},
                    )
                    if jax.process_index() == 0:
                        writing = str(metrics_path)
                        target = None
                        with open(metrics_path, 'a') as f:
                            f.write(json.dumps(rec) + '\n')
                    t_tick, img_tick, acc = time.time(), nimg, {}
                if grid or done:
                    last_grid = nimg // grid_img
                    if jax.process_index() == 0:
                        writing = f'the sample grid at {nimg} images'
                        target = None
                        _save_grid(
                            workdir / 'samples' / f'grid_{nimg:09d}.png',
                            Generator(g_cfg, _host(state.g_ema)),
                            grid_z,
                            grid_c,
                            cols,
                        )
                    dist.sync('grid')  # (the others wait here, not inside a collective)
                if snap or done:
                    last_snap = nimg // snap_img
                    writing = f'the snapshot of step {host_step} (kimg {nimg / 1000:.3f})'
                    target = workdir / 'checkpoints' / f'{host_step}.orbax-checkpoint-tmp'
                    snapshot()
                    if kill_at is not None and host_step >= kill_at:
                        os.kill(os.getpid(), signal.SIGKILL)  # crash-recovery tests: die right after a save
                if not multi:
                    halt = stop.name is not None
                elif tick or snap or done:
                    halt = dist.any_process(stop.name is not None)
            flush()
            if multi:  # every process takes the agreed decision (a signal after the last agreement waits)
                stopped = (stop.name or 'SIGTERM') if halt else None  # (SIGTERM: a peer's signal)
            else:
                stopped = stop.name
            if stopped and (saved is None or saved[0] != host_step):  # never re-save the step just saved
                writing = f'the snapshot of step {host_step} (kimg {nimg / 1000:.3f})'
                target = workdir / 'checkpoints' / f'{host_step}.orbax-checkpoint-tmp'
                snapshot()
            if stopped and not export_on_stop:
                log(
                    f'stopped by {stopped} at kimg {nimg / 1000:.3f} (step {host_step}); snapshot '
                    f'{workdir}/checkpoints/{host_step}. Rerun the same command to continue.'
                )
                return dict(
                    kimg=nimg / 1000,
                    step=host_step,
                    workdir=str(workdir),
                    final=None,
                    stopped=stopped,
                    first_step_s=first_step_time,
                    state=state,
                    g_config=g_cfg,
                    d_config=d_cfg,
                )
            final = _final_checkpoint(state, g_cfg, d_cfg, meta, finished=not stopped)
            writing = f'the final export {workdir}/final'
            target = None
            if jax.process_count() > 1:
                with _quiet_writer_threads():
                    _export_final_collective(final, workdir / 'final', host_step)
            else:
                with faults.export(workdir), _quiet_writer_threads():
                    final.save(workdir / 'final')
    except Exception as e:
        peer = dist.peer_failure(e)
        if peer is not None:
            raise peer from None
        where = _disk_full(e)
        if where is None:
            raise
        where = where or str(target or workdir)  # the error named no file: the directory being written
        lost = f'{writing} was not written'
        if 'snapshot' in writing:
            gone = _remove_temporaries(workdir)
            lost += f' (removed {", ".join(gone)})' if gone else ''
        mount = _mount_point(workdir)
        free = shutil.disk_usage(mount).free
        raise DiskFull(
            f'disk full on {mount} ({free // 1024} KiB free) writing {where}: {lost}; {kept()}. Free some '
            f'space and rerun the same command to continue from it'
        ) from None
    finally:
        pbar.close()
    if stopped:
        log(
            f'stopped by {stopped} at kimg {nimg / 1000:.3f} (step {host_step}); snapshot '
            f'{workdir}/checkpoints/{host_step}; {workdir}/final holds this unfinished model. Rerun the same command '
            f'to continue.'
        )
    else:
        log(f'done: {nimg / 1000:.2f} kimg; final model in {workdir}/final')
    return dict(
        kimg=nimg / 1000,
        step=int(state.step),
        workdir=str(workdir),
        final=str(workdir / 'final'),
        stopped=stopped,
        first_step_s=first_step_time,
        state=state,
        g_config=g_cfg,
        d_config=d_cfg,
    )


def _compiling_note() -> str:
    d = jax.config.jax_compilation_cache_dir if jax.config.jax_enable_compilation_cache else None
    if d:
        return f'compiling the training step (first run only, cached in {d})'
    return 'compiling the training step (no persistent compilation cache: every run compiles)'


def _restart_clock(pbar, n):
    """Restart the bar's clock at count `n` (after the first step, which is mostly compiling): no ETA until a
    step after it has run, then the rate of those steps only."""
    pbar.reset(total=pbar.total)
    pbar.n = pbar.last_print_n = pbar.initial = n
    pbar.set_description(None, refresh=True)


def _progress(total, initial):
    from tqdm import tqdm  # (lazy: only a training run draws a progress bar)

    return tqdm(
        total=total,
        initial=initial,
        unit='img',
        unit_scale=True,
        dynamic_ncols=True,
        disable=jax.process_index() != 0,
        mininterval=2.0,
        file=sys.stdout,
    )


# ----------------------------------------------------------------------------------------------------------
# Multi-stage runs (e.g. the demo: parent on faces, then a child fine-tuned from it).


def run(config, workdir, *, multihost=None) -> dict:
    """Run `config`; if it has `stages`, run each in workdir/<stage name> in order, then write a side-by-side
    grid (same z through every stage). Stage dicts: name, overrides {dotted key: value} (string values may
    name earlier stages' final checkpoints as '{stage_name}'), and optionally pretrained: a checkpoint used
    as that stage's result instead of training it, unless config.from_scratch is set or it is missing.

    A signal (SIGINT/SIGTERM) stops the whole run: the stage being trained writes a snapshot but no final/
    (an unfinished stage is never used by the next one), later stages are not started, and
    `results['stopped']` = {'stage', 'signal'}; the same call again continues that stage."""
    validate_config(config)
    workdir = check_workdir(workdir)
    _start_multihost(multihost, say=False)  # (train says it)
    stages = list(config.stages or [])
    if not stages:
        return {'main': train(config, workdir)}
    results, finals = {}, {}
    for st in stages:
        name = st['name']
        pre = st.get('pretrained')
        if pre and not config.from_scratch:
            if Path(pre).exists():
                finals[name] = str(pre)
                log(f'=== stage {name}: using the pretrained checkpoint {pre} (--config.from_scratch=True trains it)')
                continue
            log(f'=== stage {name}: pretrained checkpoint {pre} not found; training it')
        cfg = config.copy_and_resolve_references()
        cfg.stages = ()
        overrides = {k: v.format(**finals) if isinstance(v, str) else v for k, v in (st.get('overrides') or {}).items()}
        apply_overrides(cfg, overrides, f'stage {name!r}')
        log(f'=== stage {name}: {cfg.data.spec} -> {workdir / name}')
        results[name] = train(cfg, workdir / name, export_on_stop=False)
        if results[name].get('stopped'):
            later = [s['name'] for s in stages[stages.index(st) + 1 :]]
            log(
                f'=== stage {name} is unfinished, so it was not exported'
                + (f' and {", ".join(later)} not started' if later else '')
                + '. Rerun the same command to continue it.'
            )
            results['stopped'] = dict(stage=name, signal=results[name]['stopped'])
            return results
        finals[name] = str(workdir / name / 'final')
    compare_stages(config, workdir, finals)
    results['finals'] = finals
    return results


def compare_stages(config, workdir: Path, finals: dict[str, str], n: int | None = None):
    """Same z through every stage's final G_ema: one row per stage, written to workdir/compare.png."""
    names = list(finals)
    gens = [load_checkpoint(finals[nm]).generator() for nm in names]
    n = n or int(config.log.grid_cols)
    z = np.random.RandomState(int(config.log.grid_seed) + 1).randn(n, gens[0].z_dim).astype(np.float32)
    rows = []
    for g in gens:
        ws = g.mapping(z, truncation_psi=float(config.log.compare_psi))
        rows.append(vis.to_uint8(np.asarray(g.synthesis(ws))))
    path = Path(workdir) / 'compare.png'
    if dist.is_main():
        vis.save_png(
            path,
            vis.labelled_grid(
                np.stack(rows),
                names,
                [f'z{i}' for i in range(n)],  # 4x, labelled
                title=f'the same z through every stage (psi {config.log.compare_psi})',
            ),
        )
    log(f'wrote {path}: rows = {", ".join(names)} (same z per column)')
    return path
