"""The training config schema (ml_collections) and the step's hyper-parameters.

`base_config()` declares every key a training config has (with `lock_config=True` an unknown key is an
error); the presets in `alignjax.configs` start from it. Each default is written once: the `train.*` keys are
the fields of `TrainHParams`, the `model.*` keys those of `GeneratorConfig` / `DiscriminatorConfig` and
`model.impl.*` those of `Impl`, read from the dataclasses; `TrainHParams.from_config` and
`model_configs` build the dataclasses back from a config by field name.

A value of -1 means 'auto' and is resolved at start-up as NVlabs' `auto` config does (see
`alignjax.train.loop.resolve_config`).
"""

from __future__ import annotations

import dataclasses
import typing

import ml_collections
from ml_collections.config_dict import placeholder

from alignjax.errors import AlignjaxError
from alignjax.nn.networks import DiscriminatorConfig, GeneratorConfig, Impl


@dataclasses.dataclass(frozen=True)
class TrainHParams:
    """Static hyper-parameters of the training step (defaults: NVlabs 'stylegan2'). Every field but the freezing
    regexes is a `train.*` config key with this default."""

    batch: int = 32  # global batch
    g_lr: float = 0.002
    d_lr: float = 0.002
    betas: tuple[float, float] = (0.0, 0.99)
    eps: float = 1e-8
    r1_gamma: float = 10.0
    r1_interval: int = 16  # 0: no R1
    pl_weight: float = 2.0  # 0: no path-length regularisation
    pl_interval: int = 4
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    style_mixing: float = 0.9
    ema_kimg: float = 10.0
    ema_rampup: float | None = None
    augment: str = 'none'  # 'none' | 'ada' | 'diffaugment'
    ada_spec: str = 'bgc'
    ada_target: float = 0.6
    ada_interval: int = 4
    ada_kimg: float = 500.0
    diffaugment_policy: str = 'color,translation,cutout'
    freeze_g: tuple[str, ...] = ()  # regexes over 'mapping/fc0/weight'-style parameter paths (from config.finetune)
    freeze_d: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config) -> TrainHParams:
        """The step's hyper-parameters of a (resolved) training config: every field that config.train has, by
        name and converted to the field's type, plus the freezing regexes of config.finetune (freeze_mapping
        adds '^mapping/'; `train` has already turned freeze_d=k into regexes)."""
        f = config.finetune
        freeze_g = tuple(f.freeze_g_regex or ()) + ((r'^mapping/',) if f.freeze_mapping else ())
        return from_section(cls, config.train, freeze_g=freeze_g, freeze_d=tuple(f.freeze_d_regex or ()))


# The model.* keys: GeneratorConfig's (by these names) and DiscriminatorConfig's minibatch-std fields. The
# other dataclass fields come from the data (resolution, c_dim) or keep their defaults; D's own
# `mapping_layers` (conditioning) is not G's `model.mapping_layers`.
G_KEYS = ('z_dim', 'w_dim', 'mapping_layers', 'mapping_lr_mul', 'channel_base', 'channel_max', 'conv_clamp')
D_KEYS = ('channel_base', 'channel_max', 'mbstd_group_size', 'mbstd_num_channels', 'conv_clamp')
# model.g_architecture / model.d_architecture: the two configs' `architecture` fields ('orig' | 'skip' | 'resnet')
ARCH_KEYS = {'g_architecture': GeneratorConfig, 'd_architecture': DiscriminatorConfig}


def _coerce(tp, v):
    """A config value as a dataclass field's type (a config may hold an int where a float is meant, or a list)."""
    args = typing.get_args(tp)
    if type(None) in args:  # 'float | None'
        return None if v is None else _coerce(next(a for a in args if a is not type(None)), v)
    origin = typing.get_origin(tp) or tp
    if origin is tuple:
        return tuple(v or ())
    return origin(v)


def from_section(cls, section, **extra):
    """`cls(...)` from the fields of dataclass `cls` that config section `section` has (by name, converted to the
    field's type), plus `extra`."""
    hints = typing.get_type_hints(cls)
    kw = {
        f.name: _coerce(hints[f.name], section[f.name])
        for f in dataclasses.fields(cls)
        if f.name in section and f.name not in extra
    }
    return cls(**kw, **extra)


def model_configs(config, resolution: int, c_dim: int) -> tuple[GeneratorConfig, DiscriminatorConfig]:
    """The fresh G and D configs of `config.model` (and its impl) for data of `resolution` with `c_dim` labels."""
    m = config.model
    impl = from_section(Impl, m.impl)
    g_cfg = GeneratorConfig(
        resolution=resolution, c_dim=c_dim, impl=impl, architecture=m.g_architecture, **{k: m[k] for k in G_KEYS}
    )
    d_cfg = DiscriminatorConfig(
        resolution=resolution, c_dim=c_dim, impl=impl, architecture=m.d_architecture, **{k: m[k] for k in D_KEYS}
    )
    return g_cfg, d_cfg


def _defaults(obj, names) -> dict:
    """`obj`'s fields `names` with their defaults, as config values (None: a typed placeholder, so that
    `--config.train.ema_rampup=0.05` parses)."""
    hints = typing.get_type_hints(type(obj))
    out = {}
    for n in names:
        v = getattr(obj, n)
        if v is None:
            v = placeholder(next(a for a in typing.get_args(hints[n]) if a is not type(None)))
        out[n] = v
    return out


def base_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.name = 'run'  # the default workdir is runs/<name>
    c.seed = 0
    c.resume = True  # continue from the workdir's latest checkpoint (same config only);
    # False: start afresh, the old run moved to <workdir>/replaced-<time>/

    c.data = ml_collections.ConfigDict(
        dict(
            spec='proc:faces',  # folder:/p, zip:/p.zip, tfds:name[:split], proc:faces?n=...
            resolution=256,
            xflip=False,
            bad_file_policy='fail',
            in_memory=placeholder(bool),
            max_images=placeholder(int),
            workers=0,
        )
    )

    c.model = ml_collections.ConfigDict(
        {
            **_defaults(GeneratorConfig(), G_KEYS),
            **_defaults(DiscriminatorConfig(), D_KEYS),
            **{k: cls().architecture for k, cls in ARCH_KEYS.items()},
            'impl': _defaults(Impl(), [f.name for f in dataclasses.fields(Impl)]),
        }
    )

    c.train = ml_collections.ConfigDict(
        {  # augment: 'none' | 'ada' | 'diffaugment'
            'kimg': 25000.0,
            **_defaults(
                TrainHParams(),
                [f.name for f in dataclasses.fields(TrainHParams) if f.name not in ('freeze_g', 'freeze_d')],
            ),
        }
    )

    c.finetune = ml_collections.ConfigDict(
        dict(
            init_from='',  # any checkpoint alignjax.load_checkpoint reads
            freeze_mapping=False,  # keep the mapping network fixed
            freeze_d=0,  # FreezeD: freeze the first k D blocks (from the image side)
            freeze_g_regex=(),
            freeze_d_regex=(),
        )
    )  # regexes over 'synthesis/b8/conv0/weight'-style paths

    c.log = ml_collections.ConfigDict(
        dict(
            tick_kimg=4.0,
            snapshot_kimg=200.0,
            grid_kimg=200.0,
            keep=3,
            grid_size=32,
            grid_cols=8,
            grid_seed=0,
            compare_psi=0.7,
        )
    )
    c.debug = ml_collections.ConfigDict(dict(kill_at_step=0))  # tests: SIGKILL after the save at this step
    # (and $ALIGNJAX_FAULT: see alignjax/train/faults.py)
    c.stages = ()  # multi-stage runs (alignjax.train.loop.run), e.g. the demo preset
    c.from_scratch = False  # stages: train a stage even when it names a pretrained checkpoint
    c.demo_outputs = False  # after the stages: the demo's translation and morph (alignjax.apps.demo)
    return c


def small32_config(spec: str) -> ml_collections.ConfigDict:
    """The demo's model and hyperparameters on `spec`: 32x32, 64 channels everywhere, z = w = 128, 4 mapping
    layers, batch 16, NVlabs 'auto' R1 gamma and EMA. The demo parent and the benchmark zoo start from it."""
    c = base_config()
    c.data.spec = spec
    c.data.resolution = 32
    c.data.xflip = True
    c.model.z_dim = c.model.w_dim = 128
    c.model.mapping_layers = 4
    c.model.channel_base = 2048  # 64 channels at every resolution up to 32x32
    c.model.channel_max = 64
    c.model.mbstd_group_size = 4
    c.train.batch = 16
    c.train.g_lr = c.train.d_lr = 0.0025
    c.train.r1_gamma = 0.0002 * 32**2 / 16  # NVlabs 'auto' gamma for this resolution and batch
    c.train.ema_kimg = 16 * 10 / 32
    c.train.ema_rampup = 0.05
    c.log.tick_kimg = 1.0
    c.log.snapshot_kimg = 5.0
    c.log.grid_kimg = 5.0
    return c


# Keys that may change between a run and its resume: how long to train, logging, debugging and how the data is
# read. Everything else must match the config stored with the snapshots (`config_differences`).
RESUMABLE_KEYS = (
    'resume',
    'name',
    'stages',
    'from_scratch',
    'demo_outputs',
    'train.kimg',
    'log.',
    'debug.',
    'data.workers',
    'data.in_memory',
    'finetune.init_from',
)


class ConfigError(AlignjaxError, ValueError):
    """A config value that cannot work (named with its key and the accepted values)."""


def flatten(tree, prefix: str = '', lists: bool = True) -> dict:
    """{'model.w_dim': 32, ...} from a nested dict / ConfigDict (tuples become lists, as in JSON)."""
    out = {}
    items = tree.items() if hasattr(tree, 'items') else []
    for k, v in items:
        key = f'{prefix}{k}'
        if hasattr(v, 'items'):
            out.update(flatten(v, key + '.', lists))
        else:
            out[key] = list(v) if lists and isinstance(v, tuple) else v
    return out


def config_differences(stored: dict, now: dict, ignore=RESUMABLE_KEYS) -> list[tuple[str, object, object]]:
    """[(key, stored value, current value)] over flattened configs, skipping the resumable keys."""
    a, b = flatten(stored), flatten(now)
    skip = lambda k: any(k == i or (i.endswith('.') and k.startswith(i)) for i in ignore)
    missing = object()
    diffs = []
    for k in sorted(set(a) | set(b)):
        if skip(k):
            continue
        x, y = a.get(k, missing), b.get(k, missing)
        if _norm(x) != _norm(y):
            diffs.append((k, '(absent)' if x is missing else x, '(absent)' if y is missing else y))
    return diffs


def _norm(v):
    if isinstance(v, (list, tuple)):
        return [_norm(x) for x in v]
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    return v


def apply_overrides(c, overrides, where: str) -> None:
    """Set `{dotted key: value}` in the config `c` in place. Every key must name an existing value (a typo is an
    error, never a new key) and every value must fit its key's type; `where` names the source in errors."""
    for key, value in overrides.items():
        node, parts = c, str(key).split('.')
        for i, part in enumerate(parts):
            if not isinstance(node, ml_collections.ConfigDict) or part not in node:
                known = ', '.join(sorted(node.keys())) if isinstance(node, ml_collections.ConfigDict) else ''
                raise ConfigError(
                    f'{where}: no config key {key!r} ({".".join(parts[:i]) or "the config"} has {known or "no keys"})'
                )
            if i < len(parts) - 1:
                node = node[part]
        if isinstance(node[parts[-1]], ml_collections.ConfigDict):
            raise ConfigError(f'{where}: {key!r} is a section, not a value')
        try:
            node[parts[-1]] = value
        except (TypeError, ValueError, KeyError) as e:
            raise ConfigError(f'{where}: {key}={value!r}: {e}') from None


def validate_config(c) -> None:
    """Reject values that would run but make no sense (before any data is read or anything compiled)."""
    for st in c.get('stages') or ():
        if not isinstance(st, dict) or 'name' not in st:
            raise ConfigError(f'config.stages: every stage is a dict with a name, got {st!r}')
        bad = set(st) - {'name', 'overrides', 'pretrained'}
        if bad:
            raise ConfigError(f'stage {st["name"]!r}: unknown field(s) {sorted(bad)} (name, overrides, pretrained)')
        trial = c.copy_and_resolve_references()
        apply_overrides(trial, st.get('overrides') or {}, f'the overrides of stage {st["name"]!r}')

    def positive(key, integer=False):
        node = c
        for part in key.split('.'):
            node = node[part]
        if node is None or isinstance(node, bool) or not node > 0 or (integer and int(node) != node):
            kind = 'a positive integer' if integer else 'positive'
            raise ConfigError(f'--config.{key}={node!r}: must be {kind}')

    positive('train.kimg')
    if c.train.batch != -1:
        positive('train.batch', integer=True)
    for k in ('log.tick_kimg', 'log.snapshot_kimg', 'log.grid_kimg'):
        positive(k)
    positive('log.keep', integer=True)
    res = c.data.resolution
    if not isinstance(res, int) or res < 4 or res & (res - 1):
        raise ConfigError(f'--config.data.resolution={res!r}: must be a power of two, at least 4')
    if c.train.augment not in ('none', 'ada', 'diffaugment'):
        raise ConfigError(f"--config.train.augment={c.train.augment!r}: expected 'none', 'ada' or 'diffaugment'")
