"""Reference numbers for every StyleGAN2 architecture NVlabs ships (G and D 'orig' | 'skip' | 'resnet').

Run by hand (not by pytest): it needs PyTorch and a checkout of NVlabs stylegan2-ada-pytorch, whose
`training/networks.py` defines the networks (nothing of it is copied here; it is imported from the checkout):

    git clone https://github.com/NVlabs/stylegan2-ada-pytorch /tmp/nvlabs      # or: git archive HEAD | tar -x
    .venv/bin/python tests/make_arch_reference.py /tmp/nvlabs

For each G/D combination in COMBOS it builds tiny NVlabs networks (res 16, channels 16/16/8, z = w = 32, 2
mapping layers), randomises every bias, noise strength, constant and w_avg (so every parameter matters), and
writes tests/data/arch/<g>_<d>.npz with
  G.<key> / D.<key>      the state dicts under NVlabs names, in state_dict order (float32)
  G_kwargs / D_kwargs    the networks' init kwargs (JSON strings), as NVlabs pickles them
  z, c                   inputs (c: one-hot labels, conditional combos only, else [N, 0])
  ws                     G.mapping(z, c), truncation_psi = 1
  img_const, img_none    G.synthesis(ws) with the stored noise / without noise (NCHW)
  d_input, logits        D on random images; logits_gen: D on img_const
  grad_r1                d(sum D(d_input)) / d(d_input) (the R1 gradient)
  pl_noise, grad_pl      d(sum(G.synthesis(ws, const) * pl_noise)) / d(ws) (the path-length gradient)
Custom CUDA ops are not used: on CPU NVlabs' ops run their reference implementations (impl='ref').
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

# (G architecture, D architecture, extra kwargs): every G and every D architecture at least twice; one
# conditional model (D skip with a label mapping: its b4.fromrgb sits after `mapping` in the state dict) and
# one whose conv_clamp binds (G resnet: conv1 clamps at conv_clamp * sqrt(1/2), the skip conv never)
COMBOS = [
    ('orig', 'orig', {}),
    ('orig', 'skip', {}),
    ('skip', 'orig', {}),
    ('skip', 'skip', {'c_dim': 4}),
    ('resnet', 'resnet', {'conv_clamp': 1.0}),
    ('resnet', 'skip', {}),
]
# NVlabs options beyond the architecture, each in a file of its own (tests/data/arch/opt_<name>.npz): a mapping
# whose hidden width is not w_dim, a generator without noise inputs, and a non-default resample filter (G and D;
# an odd-length one, whose padding NVlabs splits unevenly)
OPTIONS = {
    'layer_features': ('skip', 'resnet', {'layer_features': 48, 'c_dim': 4}),
    'no_noise': ('skip', 'resnet', {'use_noise': False}),
    'filter121': ('skip', 'resnet', {'resample_filter': [1, 2, 1]}),
    'filter11': ('resnet', 'skip', {'resample_filter': [1, 1]}),
}
RES, Z, W, N = 16, 32, 32, 4
CHANNELS = dict(channel_base=128, channel_max=16)  # 16 channels at 4x4 and 8x8, 8 at 16x16
OUT = pathlib.Path(__file__).resolve().parent / 'data' / 'arch'


def randomise(module, rng, torch):
    """Every bias, noise strength, constant and w_avg random and non-zero (weights keep NVlabs' init)."""
    with torch.no_grad():
        for name, p in list(module.named_parameters()) + list(module.named_buffers()):
            if name.endswith('resample_filter'):
                continue
            if name.endswith('affine.bias'):
                p.copy_(torch.from_numpy(1 + 0.3 * rng.randn(*p.shape).astype(np.float32)))
            elif name.endswith('bias') or name.endswith('w_avg'):
                p.copy_(torch.from_numpy(0.3 * rng.randn(*p.shape).astype(np.float32)))
            elif name.endswith('noise_strength'):
                p.copy_(torch.tensor(0.3 + 0.4 * rng.rand(), dtype=torch.float32))
            elif name.endswith('const') and not name.endswith('noise_const'):
                p.copy_(torch.from_numpy(rng.randn(*p.shape).astype(np.float32)))


def make(g_arch, d_arch, extra, networks, torch, seed):
    torch.manual_seed(seed)
    rng = np.random.RandomState(seed)
    c_dim = extra.get('c_dim', 0)
    clamp = extra.get('conv_clamp')
    mapping = dict(num_layers=2) | ({'layer_features': extra['layer_features']} if 'layer_features' in extra else {})
    synthesis = {k: extra[k] for k in ('use_noise', 'resample_filter') if k in extra}
    block = {'resample_filter': extra['resample_filter']} if 'resample_filter' in extra else {}
    g_kwargs = dict(
        z_dim=Z,
        c_dim=c_dim,
        w_dim=W,
        img_resolution=RES,
        img_channels=3,
        mapping_kwargs=mapping,
        synthesis_kwargs=dict(architecture=g_arch, conv_clamp=clamp, **CHANNELS, **synthesis),
    )
    d_kwargs = dict(
        c_dim=c_dim,
        img_resolution=RES,
        img_channels=3,
        architecture=d_arch,
        conv_clamp=clamp,
        mapping_kwargs=mapping if c_dim else {},
        epilogue_kwargs=dict(mbstd_group_size=N),
        **CHANNELS,
    ) | ({'block_kwargs': block} if block else {})
    G = networks.Generator(**g_kwargs).eval().requires_grad_(False)
    D = networks.Discriminator(**d_kwargs).eval().requires_grad_(False)
    randomise(G, rng, torch)
    randomise(D, rng, torch)

    z = torch.from_numpy(rng.randn(N, Z).astype(np.float32))
    c = torch.from_numpy(
        np.eye(c_dim, dtype=np.float32)[np.arange(N) % c_dim] if c_dim else np.zeros((N, 0), np.float32)
    )
    ws = G.mapping(z, c)
    img_const = G.synthesis(ws, noise_mode='const')
    img_none = G.synthesis(ws, noise_mode='none')
    d_input = torch.from_numpy(rng.randn(N, 3, RES, RES).astype(np.float32)).requires_grad_(True)
    logits = D(d_input, c)
    (grad_r1,) = torch.autograd.grad(logits.sum(), d_input)
    logits_gen = D(img_const, c)
    pl_noise = torch.from_numpy(rng.randn(*img_const.shape).astype(np.float32))
    ws_g = ws.detach().clone().requires_grad_(True)
    (grad_pl,) = torch.autograd.grad((G.synthesis(ws_g, noise_mode='const') * pl_noise).sum(), ws_g)

    out = {f'G.{k}': v.numpy() for k, v in G.state_dict().items()}
    out.update({f'D.{k}': v.numpy() for k, v in D.state_dict().items()})
    arrays = dict(
        z=z,
        c=c,
        ws=ws,
        img_const=img_const,
        img_none=img_none,
        d_input=d_input,
        logits=logits,
        logits_gen=logits_gen,
        grad_r1=grad_r1,
        pl_noise=pl_noise,
        grad_pl=grad_pl,
    )
    out.update({k: v.detach().numpy().astype(np.float32) for k, v in arrays.items()})
    out['G_kwargs'] = np.array(json.dumps(g_kwargs))
    out['D_kwargs'] = np.array(json.dumps(d_kwargs))
    if clamp is not None:  # how often the clamp binds (a reference for the test's claim that it does)
        G2 = networks.Generator(
            **{**g_kwargs, 'synthesis_kwargs': {**g_kwargs['synthesis_kwargs'], 'conv_clamp': None}}
        ).eval()
        G2.load_state_dict(G.state_dict())
        diff = float((G2.synthesis(ws, noise_mode='const') - img_const).abs().max().detach())
        print(f'  {g_arch}_{d_arch}: without the clamp the images change by up to {diff:.3g}')
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('nvlabs', type=pathlib.Path, help='checkout of NVlabs/stylegan2-ada-pytorch')
    ap.add_argument('--out', type=pathlib.Path, default=OUT)
    a = ap.parse_args(argv)
    sys.path.insert(0, str(a.nvlabs.resolve()))
    import torch
    from training import networks  # NVlabs' own definitions, from the checkout

    torch.set_num_threads(1)
    a.out.mkdir(parents=True, exist_ok=True)
    total = 0
    jobs = [(f'{g}_{d}', g, d, extra, 1000 + i) for i, (g, d, extra) in enumerate(COMBOS)]
    jobs += [(f'opt_{name}', g, d, extra, 2000 + i) for i, (name, (g, d, extra)) in enumerate(OPTIONS.items())]
    for stem, g_arch, d_arch, extra, seed in jobs:
        arrays = make(g_arch, d_arch, extra, networks, torch, seed)
        path = a.out / f'{stem}.npz'
        np.savez_compressed(path, **arrays)
        total += path.stat().st_size
        print(
            f'{path}: {path.stat().st_size / 1e3:.0f} kB, {sum(k.startswith("G.") for k in arrays)} G and '
            f'{sum(k.startswith("D.") for k in arrays)} D tensors'
        )
    print(f'total {total / 1e6:.2f} MB')


if __name__ == '__main__':
    main()
