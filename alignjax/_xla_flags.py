"""XLA:CPU settings alignjax measured to be faster, added to XLA_FLAGS when alignjax is imported.

XLA reads XLA_FLAGS once, when JAX starts its first backend, so this runs at `import alignjax` and does nothing
if a backend is already running (import alignjax first, or set the flags yourself). It only adds a flag the
user has not set, only on the jaxlib versions it was measured on (an unknown flag is fatal to XLA), and
`ALIGNJAX_XLA_DEFAULTS=0` turns it off. The flags are XLA:CPU's own; GPU and TPU backends ignore them.

`--xla_cpu_experimental_ynn_fusion_type=` (no YNNPACK fusions): jaxlib 0.10's XLA:CPU hands convolutions to
YNNPACK, which runs the weight-gradient convolutions of a training step (a window the size of the feature map)
2-4x slower than its forward conv, and slows down as the batch grows. Without it XLA runs them with its Eigen
convolutions. Measured on 2 EPYC cores (bench/vs_nvlabs.py, docs/performance.md): dW of a 3x3 64->64 conv at
64^2, batch 32, 321 -> 74 ms; G forward 64^2 batch 32 20.7 -> 12.3 ms/img; a 64^2 training step at batch 8
(lazy regularisation amortised) 133 -> ~100 ms/img.
"""

from __future__ import annotations

import os

import jaxlib  # importing jax does not start a backend; XLA reads XLA_FLAGS when one starts
from jax._src import xla_bridge

CPU_FLAGS = ('--xla_cpu_experimental_ynn_fusion_type=',)
MEASURED_ON = ((0, 10),)  # jaxlib (major, minor)


def apply(environ=os.environ) -> tuple[str, ...]:
    """Add the missing CPU_FLAGS to environ['XLA_FLAGS']; returns the flags added (none: off, too late,
    already set, or an untested jaxlib)."""
    if environ.get('ALIGNJAX_XLA_DEFAULTS', '1') == '0':
        return ()
    try:  # a private jax API and a version string: any surprise means 'leave XLA_FLAGS alone'
        if xla_bridge.backends_are_initialized():
            return ()
        version = tuple(int(p) for p in jaxlib.__version__.split('.')[:2])
    except (AttributeError, ValueError):
        return ()
    if version not in MEASURED_ON:
        return ()
    flags = environ.get('XLA_FLAGS', '')
    added = tuple(f for f in CPU_FLAGS if f.split('=')[0] not in flags)
    if added:
        environ['XLA_FLAGS'] = ' '.join([flags, *added]).strip()
    return added


APPLIED = apply()
