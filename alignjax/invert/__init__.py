"""Inversion (projection) of images into a StyleGAN2 generator's Z, W or W+ space."""
from alignjax.invert.losses import DFeatures, PixelSSIM, Sum, make_loss, ms_ssim, psnr, ssim
from alignjax.invert.lpips import LPIPS, load_lpips, lpips_from_state_dicts
from alignjax.invert.project import (PRESETS, SPACES, InvertConfig, InvertResult, Latents, decode, invert,
                                     noise_regularization, w_stats)

__all__ = ['DFeatures', 'InvertConfig', 'InvertResult', 'LPIPS', 'Latents', 'PRESETS', 'PixelSSIM', 'SPACES', 'Sum',
           'decode', 'invert', 'load_lpips', 'lpips_from_state_dicts', 'make_loss', 'ms_ssim',
           'noise_regularization', 'psnr', 'ssim', 'w_stats']
