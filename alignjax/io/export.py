"""Export to other tools' formats."""

from __future__ import annotations

from pathlib import Path

from alignjax.errors import InputError
from alignjax.io import convert
from alignjax.io.formats.rosinality import write_rosinality_pt
from alignjax.io.formats.tf_export import write_tf_pkl


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
    cfg = dict(
        resolution=g.resolution,
        z_dim=g.z_dim,
        w_dim=g.w_dim,
        mapping_layers=g.mapping_layers,
        num_ws=g.num_ws,
        g_channels=g.channels,
        d_channels=None if d is None else d.channels,
        mapping_lr_mul=g.mapping_lr_mul,
        conv_clamp=g.conv_clamp,
        architecture=g.architecture,
    )
    if d is not None and 'D' in ck.nets:
        cfg.update(
            mbstd_group_size=d.mbstd_group_size,
            mbstd_num_channels=d.mbstd_num_channels,
            d_conv_clamp=d.conv_clamp,
            d_architecture=d.architecture,
        )
    return write_rosinality_pt(path, nvlabs_state_dicts(ck), cfg)


# ----------------------------------------------------------------------------------------------------------
# One entry point: Checkpoint.export(path, format=None)

FORMATS = ('rosinality', 'tf', 'orbax')
_ALIASES = {
    'pt': 'rosinality',
    'rosinality': 'rosinality',
    'tf': 'tf',
    'pkl': 'tf',
    'tf-pkl': 'tf',
    'nvlabs-tf': 'tf',
    'orbax': 'orbax',
    'dir': 'orbax',
    'alignjax': 'orbax',
}
_NO_NVLABS = (
    "the stylegan2-ada-pytorch .pkl is a torch_utils.persistence pickle that embeds the networks' "
    "Python source: it cannot be written without code. Write format='tf' instead (.pkl): NVlabs' "
    'legacy.load_network_pkl (stylegan2-ada-pytorch, stylegan3) converts it on load'
)


def export_format(path, format: str | None = None) -> str:
    """The format a path is exported as: `format` when given (rosinality | tf | orbax, or pt / pkl), else from
    the suffix: .pt -> rosinality, .pkl -> tf (the NVlabs TensorFlow layout: the one .pkl that holds no code),
    no suffix -> orbax (our directory format)."""
    if format is not None:
        f = str(format).lower().lstrip('.')
        if f == 'nvlabs':
            raise InputError(f'format={format!r}: {_NO_NVLABS}')
        if f not in _ALIASES:
            raise InputError(f'format={format!r}: not a format we write (one of {", ".join(FORMATS)})')
        return _ALIASES[f]
    suffix = Path(str(path)).suffix.lower()
    if suffix == '.pt':
        return 'rosinality'
    if suffix == '.pkl':
        return 'tf'
    if suffix == '':
        return 'orbax'
    raise InputError(
        f'{path}: cannot tell the format from {suffix!r} (.pt: rosinality, .pkl: NVlabs TF layout, '
        'no suffix: our directory); pass format='
    )


def export_tf(ck, path) -> list[str]:
    """Write the NVlabs TensorFlow pickle layout (G, D, Gs) (`alignjax.io.formats.tf_export`): weights and plain
    containers only; NVlabs' legacy.load_network_pkl and `load_checkpoint` read it. Returns notes."""
    return write_tf_pkl(path, nvlabs_state_dicts(ck), ck.g_config, ck.d_config)


def export(ck, path, format: str | None = None) -> list[str]:
    """Write `ck` to `path` as `format` (inferred from the suffix when None, see `export_format`); returns what
    the format loses or assumes (empty when nothing)."""
    fmt = export_format(path, format)
    if fmt == 'rosinality':
        return export_rosinality(ck, path)
    if fmt == 'tf':
        return export_tf(ck, path)
    ck.save(path)
    return []
