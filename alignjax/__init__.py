"""alignjax: aligned StyleGAN2 models (parent -> fine-tuned child) in JAX/Flax.

    import alignjax as aj
    ck = aj.load_checkpoint('network-snapshot.pkl')   # NVlabs .pkl / rosinality .pt / TF .pkl / orbax dir
    gen = ck.generator()                              # G_ema
    img = gen.synthesis(gen.mapping(z, truncation_psi=0.7))   # [N, H, W, 3] float32 in ~[-1, 1]

`aj.Generator` / `aj.Discriminator` are the model objects (config + variables, pytrees); `aj.nn.Generator` /
`aj.nn.Discriminator` are the flax modules they run (`gen.module`).
"""

from alignjax import _xla_flags  # noqa: F401  (first: XLA:CPU flags go in XLA_FLAGS before JAX starts a backend)
from alignjax import model as _model
from alignjax.errors import AlignjaxError, CheckpointError
from alignjax.io.checkpoint import Checkpoint, load_checkpoint
from alignjax.model import Discriminator, Generator, compute_w_avg, new_discriminator, new_generator
from alignjax.nn.networks import DiscriminatorConfig, GeneratorConfig, Impl, mix_styles

# Old import path `from alignjax.model import Checkpoint, load_checkpoint`: set here rather than imported by
# alignjax.model (io builds on model), and every `alignjax.model` import runs this file first.
_model.Checkpoint, _model.load_checkpoint = Checkpoint, load_checkpoint

__version__ = '0.1.0'

__all__ = [
    'AlignjaxError',
    'Checkpoint',
    'CheckpointError',
    'Discriminator',
    'DiscriminatorConfig',
    'Generator',
    'GeneratorConfig',
    'Impl',
    'compute_w_avg',
    'load_checkpoint',
    'mix_styles',
    'new_discriminator',
    'new_generator',
]
