"""Export to other tools' formats."""
from __future__ import annotations

from alignjax.io import convert
from alignjax.io.formats.rosinality import write_rosinality_pt


def nvlabs_state_dicts(ck) -> dict:
    """{'G': sd, 'G_ema': sd, 'D': sd} in stylegan2-ada-pytorch names and layouts."""
    out = {}
    for name, variables in ck.nets.items():
        cfg = ck.d_config if name == 'D' else ck.g_config
        out[name] = convert.to_nvlabs(variables, cfg)
    return out


def export_rosinality(ck, path) -> None:
    """Write a rosinality stylegan2-pytorch checkpoint {g_ema, g, d, latent_avg} that
    `torch.load(path, weights_only=True)` reads (for e4e, PTI and other PyTorch tools)."""
    cfg = dict(resolution=ck.g_config.resolution, z_dim=ck.g_config.z_dim, w_dim=ck.g_config.w_dim,
               mapping_layers=ck.g_config.mapping_layers, num_ws=ck.g_config.num_ws,
               g_channels=ck.g_config.channels, d_channels=None if ck.d_config is None else ck.d_config.channels)
    write_rosinality_pt(path, nvlabs_state_dicts(ck), cfg)
