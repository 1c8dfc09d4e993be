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


def export_rosinality(ck, path) -> list[str]:
    """Write a rosinality stylegan2-pytorch checkpoint {g_ema, g, d, latent_avg} that
    `torch.load(path, weights_only=True)` reads (for e4e, PTI and other PyTorch tools).

    Returns what the format loses for this model (each also a `UserWarning`): a minibatch-std group other than
    rosinality's 4, a mapping lr multiplier other than 0.01 (pass `--lr_mlp`), conv_clamp (rosinality cannot
    clamp: outputs differ wherever a clamp binds)."""
    g, d = ck.g_config, ck.d_config
    cfg = dict(resolution=g.resolution, z_dim=g.z_dim, w_dim=g.w_dim, mapping_layers=g.mapping_layers,
               num_ws=g.num_ws, g_channels=g.channels, d_channels=None if d is None else d.channels,
               mapping_lr_mul=g.mapping_lr_mul, conv_clamp=g.conv_clamp)
    if d is not None and 'D' in ck.nets:
        cfg.update(mbstd_group_size=d.mbstd_group_size, mbstd_num_channels=d.mbstd_num_channels,
                   d_conv_clamp=d.conv_clamp)
    return write_rosinality_pt(path, nvlabs_state_dicts(ck), cfg)
