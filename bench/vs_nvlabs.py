"""Throughput of alignjax against NVlabs stylegan2-ada-pytorch on this machine, both sides in one run.

    python bench/vs_nvlabs.py --nvlabs /path/to/stylegan2-ada-pytorch     # every row, 3 interleaved rounds
    python bench/vs_nvlabs.py --nvlabs ... --rows train64_b8,gfwd64_b32 --rounds 5
    python bench/vs_nvlabs.py                                             # no torch or checkout: our side only
    python bench/vs_nvlabs.py --scaling                                   # our s/img vs resolution and batch

Each row builds the same architecture on both sides (random weights, fp32, no custom CUDA ops: on CPU NVlabs'
ops run their reference implementations) and times the same work:
  gfwd*    G forward (mapping + synthesis, const noise). NVlabs side: the faster of fused_modconv=False/True.
  train*   training steps in NVlabs' phase order (Gmain, Greg every 4, Dmain, Dreg every 16, then G_ema), a
           multiple of 16 steps so the lazy regularisers run at NVlabs' rates; NVlabs' side is its own
           `StyleGAN2Loss` driven as `training_loop.py` drives it (Adam with the lazy-regularisation correction,
           nan_to_num on the gradients, the EMA). `*_noreg`: Gmain + Dmain + EMA only.
  invert*  projection into W plus the noise maps (NVlabs projector.py's schedule, noise regularisation and
           noise renormalisation), `--invert-steps` steps, MSE instead of LPIPS (no VGG weights here).
The arms alternate (NVlabs, ours, NVlabs, ours, ...), one computing at a time, after a warm-up (compiles
excluded). A row's figure is the median over rounds of NVlabs' time / ours (> 1: we are faster).

Only a quiet machine gives honest ratios. Beside every figure the script prints the 1-minute load average and
`others`: the CPU cores used by other processes while the row ran (from /proc/stat minus this process). A
figure taken while others used more than --quiet-cores cores, or at a load average above 1.5 with others
busy, is marked LOADED and is not a quiet figure.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import time

import jax
import numpy as np

import alignjax as aj
from alignjax.invert import InvertConfig, invert, w_stats
from alignjax.train import step as S

# name: (kind, resolution, channel_base, channel_max, batch, extra)
ROWS = {
    'gfwd256_b8': ('gfwd', 256, 16384, 512, 8, {}),
    'gfwd64_b32': ('gfwd', 64, 8192, 128, 32, {}),
    'train64_b8_noreg': ('train', 64, 4096, 128, 8, dict(reg=False)),
    'train64_b8': ('train', 64, 4096, 128, 8, dict(reg=True)),
    'train32_b16_noreg': ('train', 32, 2048, 64, 16, dict(reg=False)),
    'train32_b16': ('train', 32, 2048, 64, 16, dict(reg=True)),
    'train64_b32': ('train', 64, 4096, 128, 32, dict(reg=True)),
    'train64_b64': ('train', 64, 4096, 128, 64, dict(reg=True)),
    'invert32_b1': ('invert', 32, 4096, 128, 1, {}),
    'invert32_b8': ('invert', 32, 4096, 128, 8, {}),
    'invert32_b32': ('invert', 32, 4096, 128, 32, {}),
}
Z = W = 512
MAPPING = 8


def train_hp(res, batch, reg):
    """NVlabs 'auto'-like settings for a res/batch (gamma 0.0002 res^2 / batch, EMA batch * 10/32 kimg)."""
    return dict(
        batch=batch,
        g_lr=0.0025,
        d_lr=0.0025,
        r1_gamma=0.0002 * res**2 / batch if reg else 0.0,
        pl_weight=2.0 if reg else 0.0,
        ema_kimg=batch * 10 / 32,
        style_mixing=0.9,
    )


# -- CPU accounting ---------------------------------------------------------------------------------------


def _busy_jiffies():
    with open('/proc/stat') as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]  # user nice system irq softirq steal


def _own_jiffies():
    with open('/proc/self/stat') as f:
        v = f.read().rsplit(')', 1)[1].split()
    return int(v[11]) + int(v[12])  # utime stime (all threads)


class CpuMeter:
    """Cores used by other processes between start() and stop()."""

    def start(self):
        self.t, self.busy, self.own = time.perf_counter(), _busy_jiffies(), _own_jiffies()

    def stop(self) -> float:
        dt = time.perf_counter() - self.t
        hz = os.sysconf('SC_CLK_TCK')
        return max(0.0, ((_busy_jiffies() - self.busy) - (_own_jiffies() - self.own)) / hz / max(dt, 1e-9))


# -- our side --------------------------------------------------------------------------------------------


def _configs(res, base, cmax, batch):
    g = aj.GeneratorConfig(
        resolution=res, z_dim=Z, w_dim=W, mapping_layers=MAPPING, channel_base=base, channel_max=cmax
    )
    d = aj.DiscriminatorConfig(resolution=res, channel_base=base, channel_max=cmax, mbstd_group_size=min(4, batch))
    return g, d


def ours_gfwd(res, base, cmax, batch):
    g_cfg, _ = _configs(res, base, cmax, batch)
    gen = aj.new_generator(jax.random.key(0), config=g_cfg)
    z = jax.random.normal(jax.random.key(1), (batch, Z))
    fwd = jax.jit(lambda g, z: g.synthesis(g.mapping(z), noise_mode='const'))

    def run(n):
        for _ in range(n):
            out = fwd(gen, z)
        jax.block_until_ready(out)

    return run


def ours_train(res, base, cmax, batch, reg):
    g_cfg, d_cfg = _configs(res, base, cmax, batch)
    fns = S.StepFns(g_cfg, d_cfg, S.TrainHParams(**train_hp(res, batch, reg)))
    g = aj.new_generator(jax.random.key(0), config=g_cfg)
    d = aj.new_discriminator(jax.random.key(1), config=d_cfg)
    g_tx, d_tx = fns.optimizers(g.variables['params'], d.variables['params'])
    box = [fns.place(S.init_state(jax.random.key(2), g.variables, d.variables, g.variables, g_tx, d_tx)), 0]
    reals = np.random.RandomState(0).randint(0, 256, (batch, res, res, 3)).astype(np.uint8)
    x, y = fns.shard_batch((reals, np.zeros((batch, 0), np.float32)))

    def run(n):
        for _ in range(n):
            box[0], _m = fns.step(box[0], x, y, step_index=box[1])
            box[1] += 1
        jax.block_until_ready(box[0])

    return run


def ours_invert(res, base, cmax, batch, steps):
    g_cfg, _ = _configs(res, base, cmax, batch)
    gen = aj.new_generator(jax.random.key(0), config=g_cfg)
    z = np.random.RandomState(0).randn(batch, Z).astype(np.float32)
    targets = np.asarray(gen.synthesis(gen.mapping(z)))
    stats = w_stats(gen)
    cfg = InvertConfig.nvlabs().replace(steps=steps, chunk=steps)

    def run(n):
        for _ in range(n):
            invert(gen, targets, cfg, loss='mse', stats=stats, batch_size=batch, progress=False)

    return run


# -- NVlabs side -----------------------------------------------------------------------------------------


class NVlabs:
    """NVlabs' networks and loss, imported from a checkout (nothing of it is copied here)."""

    def __init__(self, path, threads):
        import torch

        sys.path.insert(0, os.path.abspath(path))
        from torch_utils import misc
        from training import loss, networks

        torch.set_num_threads(threads)
        self.torch, self.misc, self.networks, self.loss = torch, misc, networks, loss

    def nets(self, res, base, cmax, batch):
        kw = dict(channel_base=base, channel_max=cmax, num_fp16_res=0, conv_clamp=None)
        G = self.networks.Generator(
            z_dim=Z, c_dim=0, w_dim=W, img_resolution=res, img_channels=3,
            mapping_kwargs=dict(num_layers=MAPPING), synthesis_kwargs=kw,
        )  # fmt: skip
        D = self.networks.Discriminator(
            c_dim=0, img_resolution=res, img_channels=3, epilogue_kwargs=dict(mbstd_group_size=min(4, batch)), **kw
        )
        return G, D

    def gfwd(self, res, base, cmax, batch):
        torch = self.torch
        G, _ = self.nets(res, base, cmax, batch)
        G = G.eval().requires_grad_(False)
        z = torch.randn([batch, Z])
        best = {}
        for fused in (False, True):  # pick NVlabs' faster variant
            with torch.no_grad():
                G(z, None, noise_mode='const', fused_modconv=fused)
                t = time.perf_counter()
                G(z, None, noise_mode='const', fused_modconv=fused)
                best[fused] = time.perf_counter() - t
        fused = min(best, key=best.get)

        def run(n):
            with torch.no_grad():
                for _ in range(n):
                    G(z, None, noise_mode='const', fused_modconv=fused)

        run.note = f'NVlabs fused_modconv={fused}'
        return run

    def train(self, res, base, cmax, batch, reg):
        torch, misc = self.torch, self.misc
        hp = train_hp(res, batch, reg)
        G, D = self.nets(res, base, cmax, batch)
        G, D = G.train().requires_grad_(False), D.train().requires_grad_(False)
        G_ema = copy.deepcopy(G).eval()
        loss = self.loss.StyleGAN2Loss(
            device=torch.device('cpu'), G_mapping=G.mapping, G_synthesis=G.synthesis, D=D,
            style_mixing_prob=hp['style_mixing'], r1_gamma=hp['r1_gamma'], pl_weight=hp['pl_weight'],
        )  # fmt: skip
        phases = []
        regs = (('G', G, hp['g_lr'], 4 if reg else None), ('D', D, hp['d_lr'], 16 if reg else None))
        for name, module, lr, interval in regs:
            if interval is None:
                opt = torch.optim.Adam(module.parameters(), lr=lr, betas=(0.0, 0.99), eps=1e-8)
                phases.append((name + 'both', module, opt, 1))
            else:
                r = interval / (interval + 1)
                opt = torch.optim.Adam(module.parameters(), lr=lr * r, betas=(0.0, 0.99**r), eps=1e-8)
                phases += [(name + 'main', module, opt, 1), (name + 'reg', module, opt, interval)]
        reals = torch.from_numpy(np.random.RandomState(0).randint(0, 256, (batch, 3, res, res)).astype(np.uint8))
        c = torch.zeros([batch, 0])
        beta = 0.5 ** (batch / (hp['ema_kimg'] * 1000))
        count = [0]

        def step():
            real = reals.to(torch.float32) / 127.5 - 1
            for name, module, opt, interval in phases:
                if count[0] % interval:
                    continue
                gen_z = torch.randn([batch, Z])
                opt.zero_grad(set_to_none=True)
                module.requires_grad_(True)
                loss.accumulate_gradients(name, real, c, gen_z, c, sync=True, gain=interval)
                module.requires_grad_(False)
                for p in module.parameters():
                    if p.grad is not None:
                        misc.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
                opt.step()
            with torch.no_grad():
                for p_ema, p in zip(G_ema.parameters(), G.parameters()):
                    p_ema.copy_(p.lerp(p_ema, beta))
                for b_ema, b in zip(G_ema.buffers(), G.buffers()):
                    b_ema.copy_(b)
            count[0] += 1

        def run(n):
            for _ in range(n):
                step()

        return run

    def invert(self, res, base, cmax, batch, steps):
        torch = self.torch
        G, _ = self.nets(res, base, cmax, batch)
        G = G.eval().requires_grad_(False)
        with torch.no_grad():
            targets = G(torch.from_numpy(np.random.RandomState(0).randn(batch, Z).astype(np.float32)), None)
            w = G.mapping(torch.from_numpy(np.random.RandomState(123).randn(10000, Z).astype(np.float32)), None)
        w = w[:, :1].numpy()
        w_avg = w.mean(0, keepdims=True)
        w_std = float((np.sum((w - w_avg) ** 2) / len(w)) ** 0.5)
        layers = [m for m in G.synthesis.modules() if 'noise_const' in getattr(m, '_buffers', {})]

        def project():  # projector.py's loop, batched (a W and noise maps per image), MSE distance
            w_opt = torch.tensor(np.repeat(w_avg, batch, 0), requires_grad=True)
            bufs = []
            for m in layers:
                r = m._buffers['noise_const'].shape[-1]
                m._buffers['noise_const'] = torch.randn([batch, 1, r, r]).requires_grad_(True)
                bufs.append(m._buffers['noise_const'])
            opt = torch.optim.Adam([w_opt, *bufs], betas=(0.9, 0.999), lr=0.1)
            for step in range(steps):
                t = step / steps
                w_noise_scale = w_std * 0.05 * max(0.0, 1.0 - t / 0.75) ** 2
                ramp = min(1.0, (1.0 - t) / 0.25)
                ramp = (0.5 - 0.5 * math.cos(ramp * math.pi)) * min(1.0, t / 0.05)
                for g in opt.param_groups:
                    g['lr'] = 0.1 * ramp
                ws = (w_opt + torch.randn_like(w_opt) * w_noise_scale).repeat([1, G.mapping.num_ws, 1])
                synth = G.synthesis(ws, noise_mode='const')
                dist = (synth - targets).square().mean([1, 2, 3]).sum()
                reg = 0.0
                for v in bufs:
                    noise = v
                    while True:
                        reg += (noise * torch.roll(noise, shifts=1, dims=3)).mean() ** 2
                        reg += (noise * torch.roll(noise, shifts=1, dims=2)).mean() ** 2
                        if noise.shape[2] <= 8:
                            break
                        noise = torch.nn.functional.avg_pool2d(noise, kernel_size=2)
                opt.zero_grad(set_to_none=True)
                (dist + reg * 1e5).backward()
                opt.step()
                with torch.no_grad():
                    for buf in bufs:
                        buf -= buf.mean([1, 2, 3], keepdim=True)
                        buf *= buf.square().mean([1, 2, 3], keepdim=True).rsqrt()

        def run(n):
            for _ in range(n):
                project()

        return run


# -- driver ----------------------------------------------------------------------------------------------


def _calls(kind, batch, a):
    """Calls of an arm per timed round (a call: one G forward, one training step, one whole projection)."""
    return {'gfwd': max(1, a.gfwd_images // batch), 'train': a.train_steps}.get(kind, 1)


def flag(load, others, quiet_cores):
    if others > quiet_cores or (load > 1.5 and others > quiet_cores / 2):
        return f'LOADED (load {load:.2f}, others {others:.2f} cores): not a quiet figure'
    return f'quiet (load {load:.2f}, others {others:.2f} cores)'


def bench_row(name, nv, a):
    kind, res, base, cmax, batch, extra = ROWS[name]
    args = (res, base, cmax, batch)
    if kind == 'gfwd':
        arms = {'ours': ours_gfwd(*args)}
        if nv:
            arms['nvlabs'] = nv.gfwd(*args)
    elif kind == 'train':
        arms = {'ours': ours_train(*args, extra['reg'])}
        if nv:
            arms['nvlabs'] = nv.train(*args, extra['reg'])
    else:
        arms = {'ours': ours_invert(*args, a.invert_steps)}
        if nv:
            arms['nvlabs'] = nv.invert(*args, a.invert_steps)
    n, per = _calls(kind, batch, a), batch
    warm = 1  # train: step 0 runs every phase, so all of ours compile here
    for arm in arms.values():
        arm(warm)
    order = [k for k in ('nvlabs', 'ours') if k in arms]
    times = {k: [] for k in order}
    meter = CpuMeter()
    meter.start()
    for _round in range(a.rounds):
        for k in order:
            t = time.perf_counter()
            arms[k](n)
            times[k].append((time.perf_counter() - t) / (n * per))
    others = meter.stop()
    load = os.getloadavg()[0]
    ours = float(np.median(times['ours']))
    unit = f'{kind} {res}^2 b{batch}' + ('' if kind != 'invert' else f' ({a.invert_steps} steps)')
    line = f'{name:18s} {unit:28s} ours {ours * 1e3:9.2f} ms/img'
    if 'nvlabs' in arms:
        theirs = float(np.median(times['nvlabs']))
        ratio = float(np.median(np.array(times['nvlabs']) / np.array(times['ours'])))
        note = getattr(arms['nvlabs'], 'note', '')
        line += f'   NVlabs {theirs * 1e3:9.2f} ms/img   x{ratio:.2f}  {note}'
    print(f'{line}   {flag(load, others, a.quiet_cores)}', flush=True)


def scaling(a):
    """Our s/img vs resolution and batch: G forward, and a training step with the lazy phases amortised."""
    print('| res | channels (base/max) | batch | G forward ms/img | train step ms/img | load | others |')
    print('|---|---|---|---|---|---|---|')
    for res in [int(r) for r in a.scaling_res.split(',')]:
        for batch in [int(b) for b in a.scaling_batch.split(',')]:
            meter = CpuMeter()
            g = ours_gfwd(res, 8192, 128, batch)
            g(1)
            n = max(1, a.gfwd_images // batch)
            meter.start()
            t = time.perf_counter()
            g(n)
            tg = (time.perf_counter() - t) / (n * batch)
            tr = float('nan')
            if batch >= 2 and res <= a.scaling_train_max_res:  # minibatch-std needs a group of 2
                tr_run = ours_train(res, 8192, 128, batch, True)
                tr_run(1)
                t = time.perf_counter()
                tr_run(a.train_steps)
                tr = (time.perf_counter() - t) / (a.train_steps * batch)
            others = meter.stop()
            print(
                f'| {res} | 8192/128 | {batch} | {tg * 1e3:.2f} | {"n/a" if tr != tr else f"{tr * 1e3:.1f}"} | '
                f'{os.getloadavg()[0]:.2f} | '
                f'{others:.2f} |',
                flush=True,
            )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--nvlabs', default=os.environ.get('ALIGNJAX_NVLABS_REPO'), help='NVlabs checkout (path)')
    p.add_argument('--rows', default=','.join(ROWS), help=f'comma-separated; all: {",".join(ROWS)}')
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--train-steps', type=int, default=16, help='steps per timed round (a multiple of 16)')
    p.add_argument('--gfwd-images', type=int, default=64, help='images per timed G-forward round')
    p.add_argument('--invert-steps', type=int, default=100)
    p.add_argument('--threads', type=int, default=os.cpu_count(), help='torch intra-op threads')
    p.add_argument('--quiet-cores', type=float, default=0.3, help='others above this many cores: LOADED')
    p.add_argument('--scaling', action='store_true', help='print our scaling table instead')
    p.add_argument('--scaling-res', default='32,64,128,256')
    p.add_argument('--scaling-batch', default='1,4,16,64')
    p.add_argument('--scaling-train-max-res', type=int, default=256, help='time training steps up to this res')
    a = p.parse_args(argv)
    if a.train_steps % 16:
        p.error('--train-steps must be a multiple of 16 (the lazy R1 interval)')
    print(
        f'device: {jax.devices()[0].device_kind} x{jax.device_count()}  jax {jax.__version__}  '
        f'cores {os.cpu_count()}  load {os.getloadavg()[0]:.2f}',
        flush=True,
    )
    if a.scaling:
        return scaling(a)
    nv = None
    try:
        import torch

        if a.nvlabs:
            nv = NVlabs(a.nvlabs, a.threads)
            print(f'NVlabs: {a.nvlabs}  torch {torch.__version__} ({a.threads} threads)')
        else:
            print('no NVlabs checkout given (--nvlabs or $ALIGNJAX_NVLABS_REPO): our side only')
    except ImportError:
        print('torch is not installed: our side only')
    for name in a.rows.split(','):
        if name.strip() not in ROWS:
            p.error(f'unknown row {name!r}; the rows are {", ".join(ROWS)}')
        bench_row(name.strip(), nv, a)


if __name__ == '__main__':
    main()
