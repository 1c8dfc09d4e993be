"""Inversion (projection) of images into a StyleGAN2 generator's Z, W or W+ space, batched and jit-compiled.

    from alignjax.invert import InvertConfig, invert, decode
    res = invert(gen, images, InvertConfig(space='w+', noise=True))      # images: uint8 or [-1, 1] NHWC
    res.latents, res.images, res.psnr, res.distance, res.history         # per image
    decode(child, res.latents)                                            # zero-shot translation

Defaults are NVlabs `projector.py`'s (Adam lr 0.1, 5% linear ramp-up, 25% cosine ramp-down, latent noise
0.05 * w_std fading out by 75%, noise-map regulariser 1e5 with per-step renormalisation, start at the mean
of 10,000 mapped z); `InvertConfig.stylealign()` is StyleAlign's translation setting (Z, z = 0 start,
truncation 0.5, 500 steps, noise maps). Deviation: optimised noise maps start from the model's const noise
(`noise_init='const'`; NVlabs draws fresh N(0, 1) maps, `noise_init='random'`), equivalent in distribution
and the render of the start equals the model's const-noise output.

Losses: LPIPS(VGG16) with user-supplied weights (`load_lpips(vgg16.pth, lpips_vgg.pth)`, read without torch,
or `lpips_from_state_dicts` from arrays in memory), or the weight-free default `PixelSSIM`
(100 * MSE + 10 * (1 - multi-scale SSIM)); `DFeatures` uses the checkpoint's own discriminator.

Measured recovery PSNRs per space and loss: docs/performance.md.
"""

from alignjax.invert.losses import DFeatures, PixelSSIM, Sum, make_loss, ms_ssim, psnr, ssim
from alignjax.invert.lpips import LPIPS, load_lpips, lpips_from_state_dicts
from alignjax.invert.project import (
    PRESETS,
    SPACES,
    InvertConfig,
    InvertResult,
    Latents,
    check_latents,
    const_noise,
    decode,
    invert,
    noise_regularization,
    w_stats,
)
from alignjax.invert.store import load_latents, save_latents

__all__ = [
    'DFeatures',
    'InvertConfig',
    'InvertResult',
    'LPIPS',
    'Latents',
    'PRESETS',
    'PixelSSIM',
    'SPACES',
    'Sum',
    'check_latents',
    'const_noise',
    'decode',
    'invert',
    'load_latents',
    'load_lpips',
    'lpips_from_state_dicts',
    'make_loss',
    'ms_ssim',
    'noise_regularization',
    'psnr',
    'save_latents',
    'ssim',
    'w_stats',
]
