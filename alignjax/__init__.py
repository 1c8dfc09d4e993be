"""alignjax: aligned StyleGAN2 models (parent -> fine-tuned child) in JAX/Flax.

    import alignjax as aj
    ck = aj.load_checkpoint('network-snapshot.pkl')   # NVlabs .pkl / rosinality .pt / TF .pkl / orbax dir
    gen = ck.generator()                              # G_ema
    img = gen.synthesis(gen.mapping(z, truncation_psi=0.7))   # [N, H, W, 3] float32 in ~[-1, 1]
"""
from alignjax.model import (Checkpoint, Discriminator, Generator, compute_w_avg, load_checkpoint,
                            new_discriminator, new_generator)
from alignjax.nn.networks import DiscriminatorConfig, GeneratorConfig, Impl, mix_styles

__version__ = '0.1.0'

__all__ = ['Checkpoint', 'Discriminator', 'DiscriminatorConfig', 'Generator', 'GeneratorConfig', 'Impl',
           'compute_w_avg', 'load_checkpoint', 'mix_styles', 'new_discriminator', 'new_generator']
