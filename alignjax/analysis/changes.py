"""(1) What changes in fine-tuning: per-component relative weight change and reset-to-parent hybrids.

ch = weight_changes(parent, child)            # WeightChanges: per component and per layer ||d|| / ||p||
rs = reset_hybrids(parent, child, child_ev, reference=ref_features)   # ResetResult: FD_eval per hybrid
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import numpy as np

from alignjax.analysis.common import (
    AnalysisError,
    as_labeller,
    check_labeller_fits,
    check_pair,
    mapping,
    sample_z,
    synth,
)
from alignjax.eval.data import EVAL_SEED, render_set
from alignjax.metrics.distances import fd_from_features

COMPONENTS = ('mapping', 'affine', 'conv', 'torgb', 'bias', 'noise', 'const')


def component_of(path: str) -> tuple[str, str]:
    """(component, layer) of a variable path like "['params']['synthesis']['b8']['conv0']['weight']"."""
    keys = [k.strip("'[]") for k in path.replace('][', '|').split('|')]
    if 'mapping' in keys:
        return 'mapping', 'mapping'
    block = next((k for k in keys if k.startswith('b') and k[1:].isdigit()), '')
    layer = next((k for k in keys if k in ('conv0', 'conv1', 'torgb')), '')
    name = f'{block}.{layer}' if layer else block
    leaf = keys[-1]
    if 'affine' in keys:
        return 'affine', name
    if leaf in ('noise_strength', 'noise_const'):
        return 'noise', name
    if leaf == 'const':
        return 'const', name
    if leaf == 'bias':
        return 'bias', name
    if layer == 'torgb':
        return 'torgb', name
    return f'conv_{block[1:]}', name


@dataclasses.dataclass
class WeightChanges:
    components: dict  # component -> relative change ||child - parent|| / ||parent||
    layers: dict  # 'b8.conv0/conv' -> relative change
    norms: dict  # component -> ||parent||
    overall: float  # every synthesis parameter together (the mapping is stored scaled by 1/lr_mul, so
    # its norm would dominate any total; the noise const maps are buffers)
    conv_distance: float


def weight_changes(parent, child) -> WeightChanges:
    """Relative change per component: mapping, affine (StyleSpace), conv_<res> (synthesis conv weights per
    resolution), torgb, bias, noise (strengths and const maps), const (the 4x4 input)."""
    d = check_pair(parent, child)
    num, den, lnum, lden = {}, {}, {}, {}
    syn_num = syn_den = 0.0
    la = jax.tree_util.tree_leaves_with_path(parent.variables)
    lb = dict(jax.tree_util.tree_leaves_with_path(child.variables))
    for path, a in la:
        p = jax.tree_util.keystr(path)
        comp, layer = component_of(p)
        a = np.asarray(a, np.float64)
        b = np.asarray(lb[path], np.float64)
        dn, pn = float(np.sum((b - a) ** 2)), float(np.sum(a**2))
        num[comp] = num.get(comp, 0.0) + dn
        den[comp] = den.get(comp, 0.0) + pn
        key = f'{layer}/{comp.split("_")[0]}'
        if comp not in ('mapping', 'noise'):
            syn_num += dn
            syn_den += pn
        lnum[key] = lnum.get(key, 0.0) + dn
        lden[key] = lden.get(key, 0.0) + pn
    rel = lambda n, dd: float(np.sqrt(n / dd)) if dd > 0 else (0.0 if n == 0 else float('inf'))
    order = sorted(num, key=lambda c: (COMPONENTS.index(c.split('_')[0]), int(c.split('_')[1]) if '_' in c else 0))
    return WeightChanges(
        components={c: rel(num[c], den[c]) for c in order},
        layers={k: rel(lnum[k], lden[k]) for k in sorted(lnum, key=_layer_order)},
        norms={c: float(np.sqrt(den[c])) for c in order},
        overall=rel(syn_num, syn_den),
        conv_distance=d,
    )


def _layer_order(key: str):
    # 'b8.conv0/affine' -> sortable: mapping first, then by resolution, layer, kind
    name, _, kind = key.partition('/')
    if name == 'mapping':
        return (0, 0, '', kind)
    block, _, layer = name.partition('.')
    return (1, int(block[1:]) if block[1:].isdigit() else 0, layer, kind)


def reset_variables(parent, child, component: str):
    """The child's variables with every leaf of `component` (see `component_of`) taken from the parent."""
    la = dict(jax.tree_util.tree_leaves_with_path(parent.variables))

    def pick(path, leaf):
        return la[path] if component_of(jax.tree_util.keystr(path))[0] == component else leaf

    return jax.tree_util.tree_map_with_path(pick, child.variables)


@functools.lru_cache(maxsize=16)
def _reference_cached(domain, resolution, n, seed, ev_id):
    return render_set(domain, resolution, seed, 0, n)['image']


def reference_features(labeller, domain: str, n: int = 2000, seed: int | None = None) -> np.ndarray:
    """Evaluator features of `n` held-out renders of `domain` (the FD_eval reference)."""
    lab = as_labeller(labeller)
    imgs = _reference_cached(domain, lab.resolution or 32, int(n), EVAL_SEED if seed is None else int(seed), 0)
    out = lab(imgs)
    if 'features' not in out:
        raise AnalysisError(f'{lab.name}: FD_eval needs "features" in the labeller output')
    return out['features']


def fd(real_feats, gen_feats) -> float:
    return float(fd_from_features(np.asarray(real_feats, np.float64), np.asarray(gen_feats, np.float64)))


@dataclasses.dataclass
class ResetResult:
    fd_child: float  # FD_eval of the child itself to the child domain
    fd_parent: float  # ... of the parent (what is lost when everything is reset)
    hybrids: dict  # component -> {'fd', 'look_lost', 'pixel_change'}
    n: int
    seed: int
    psi: float
    examples: dict = dataclasses.field(default_factory=dict, repr=False)  # name -> uint8 [k, R, R, 3]


def reset_hybrids(
    parent,
    child,
    labeller,
    reference,
    *,
    components=None,
    n: int = 1000,
    seed: int = 0,
    psi: float = 1.0,
    examples: int = 6,
    progress=None,
) -> ResetResult:
    """G(child with component X from the parent) for each component: FD_eval (in `labeller`'s features,
    `reference` = real features of the child domain), the fraction of the child's look lost
    ((FD_hybrid - FD_child) / (FD_parent - FD_child)) and the mean pixel change from the child's image for
    the same z (relative to the parent's)."""
    check_pair(parent, child, warn=False)
    lab = as_labeller(labeller)
    check_labeller_fits(lab, child, 'reset hybrids')
    z = sample_z(n, parent.z_dim, seed)
    comps = list(components or weight_changes(parent, child).components)  # every component, the 4x4 const too

    def run(gen):
        img = synth(gen, mapping(gen, z, psi))
        return img, lab(img)['features']

    ci, cf = run(child)
    pi, pf = run(parent)
    fc, fp = fd(reference, cf), fd(reference, pf)
    base = np.mean(np.abs(pi.astype(np.float32) - ci.astype(np.float32)))
    out, ex = {}, {'child': ci[:examples], 'parent': pi[:examples]}
    for c in comps:
        g = child.with_variables(reset_variables(parent, child, c))
        hi, hf = run(g)
        f = fd(reference, hf)
        out[c] = dict(
            fd=f,
            look_lost=(f - fc) / (fp - fc) if fp != fc else float('nan'),
            pixel_change=float(np.mean(np.abs(hi.astype(np.float32) - ci.astype(np.float32))) / base)
            if base > 0
            else 0.0,
        )
        ex[c] = hi[:examples]
        if progress is not None:
            progress.update(1)
    return ResetResult(fd_child=fc, fd_parent=fp, hybrids=out, n=n, seed=seed, psi=psi, examples=ex)
