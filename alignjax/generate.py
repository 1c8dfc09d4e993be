"""Images from seeds, as NVlabs generate.py renders them (z = np.random.RandomState(seed).randn(z_dim)).

    from alignjax.generate import render_seeds
    u8 = render_seeds(gen, range(8), psi=0.7)            # uint8 [8, H, W, 3]

The command line is `alignjax-generate` (alignjax/cli/generate.py); `python -m alignjax.generate` still runs it.
"""

from __future__ import annotations

import jax
import numpy as np

from alignjax import vis


def render_seeds(
    gen,
    seeds,
    *,
    psi: float = 1.0,
    psi_cutoff: int | None = None,
    noise_mode: str = 'const',
    class_idx: int | None = None,
    batch: int = 8,
    key=None,
) -> np.ndarray:
    """uint8 [len(seeds), H, W, 3]: NVlabs z per seed, mapped with truncation (psi, psi_cutoff), rendered in
    batches of `batch`; a conditional generator needs `class_idx`. noise_mode 'random' folds the batch's start
    index into `key` (default jax.random.key(0))."""
    seeds = list(seeds)
    c = None
    if gen.config.c_dim:
        if class_idx is None or not 0 <= class_idx < gen.config.c_dim:
            raise ValueError(
                f'class_idx must be in 0..{gen.config.c_dim - 1} for this conditional generator, got {class_idx}'
            )
        c = np.zeros((len(seeds), gen.config.c_dim), np.float32)
        c[:, class_idx] = 1
    elif class_idx is not None:
        raise ValueError('class_idx given but the generator is not conditional')
    z = vis.nvlabs_z(seeds, gen.config.z_dim)
    key = jax.random.key(0) if key is None else key
    imgs = []
    for i in range(0, len(seeds), batch):
        ws = gen.mapping(z[i : i + batch], None if c is None else c[i : i + batch], psi, psi_cutoff)
        imgs.append(np.asarray(gen.synthesis(ws, noise_mode, key=jax.random.fold_in(key, i))))
    return vis.to_uint8(np.concatenate(imgs))


if __name__ == '__main__':  # the old spelling of `alignjax-generate`
    from alignjax.cli.generate import main

    raise SystemExit(main())
