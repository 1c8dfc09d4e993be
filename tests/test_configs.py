"""Training configs in the package (alignjax.configs): every preset equals what the old configs/*.py files built
(values and types, recorded before they became shims), the shims equal the presets, lock_config rejects unknown
keys, the step's dataclasses are built from the config sections, and every default is written once."""

import dataclasses
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from alignjax.configs import PRESETS, get_config, preset
from alignjax.nn.networks import DiscriminatorConfig, GeneratorConfig, Impl
from alignjax.train.config import (
    ARCH_KEYS,
    D_KEYS,
    G_KEYS,
    ConfigError,
    TrainHParams,
    base_config,
    flatten,
    from_section,
    model_configs,
    validate_config,
)

ROOT_PATH = Path(__file__).resolve().parents[1]
ROOT = str(ROOT_PATH)

# ---------------------------------------------------------------------------------------------------------
# Recorded from the configs/*.py files before the presets moved into the package (flattened JSON): base_config,
# and per file the keys whose value or type differs from it.

OLD_BASE = {
    'data.bad_file_policy': 'fail',
    'data.in_memory': None,
    'data.max_images': None,
    'data.resolution': 256,
    'data.spec': 'proc:faces',
    'data.workers': 0,
    'data.xflip': False,
    'debug.kill_at_step': 0,
    'finetune.freeze_d': 0,
    'finetune.freeze_d_regex': [],
    'finetune.freeze_g_regex': [],
    'finetune.freeze_mapping': False,
    'finetune.init_from': '',
    'log.compare_psi': 0.7,
    'log.grid_cols': 8,
    'log.grid_kimg': 200.0,
    'log.grid_seed': 0,
    'log.grid_size': 32,
    'log.keep': 3,
    'log.snapshot_kimg': 200.0,
    'log.tick_kimg': 4.0,
    'model.channel_base': 32768,
    'model.channel_max': 512,
    'model.conv_clamp': None,
    'model.impl.downconv': 'split',
    'model.impl.dtype': 'float32',
    'model.impl.fir': 'polyphase',
    'model.impl.modconv': 'shared',
    'model.impl.upconv': 'split',
    'model.mapping_layers': 8,
    'model.mapping_lr_mul': 0.01,
    'model.mbstd_group_size': 4,
    'model.mbstd_num_channels': 1,
    'model.w_dim': 512,
    'model.z_dim': 512,
    'resume': True,
    'seed': 0,
    'stages': [],
    'train.ada_interval': 4,
    'train.ada_kimg': 500.0,
    'train.ada_spec': 'bgc',
    'train.ada_target': 0.6,
    'train.augment': 'none',
    'train.batch': 32,
    'train.betas': [0.0, 0.99],
    'train.d_lr': 0.002,
    'train.diffaugment_policy': 'color,translation,cutout',
    'train.ema_kimg': 10.0,
    'train.ema_rampup': None,
    'train.eps': 1e-08,
    'train.g_lr': 0.002,
    'train.kimg': 25000.0,
    'train.pl_batch_shrink': 2,
    'train.pl_decay': 0.01,
    'train.pl_interval': 4,
    'train.pl_weight': 2.0,
    'train.r1_gamma': 10.0,
    'train.r1_interval': 16,
    'train.style_mixing': 0.9,
}
OLD_PRESETS = {
    'configs/auto.py': {
        'model.channel_base': -1,
        'model.mapping_layers': 2,
        'model.mbstd_group_size': -1,
        'train.batch': -1,
        'train.d_lr': -1.0,
        'train.ema_kimg': -1.0,
        'train.ema_rampup': 0.05,
        'train.g_lr': -1.0,
        'train.r1_gamma': -1.0,
    },
    'configs/demo.py': {
        'data.resolution': 32,
        'data.spec': 'proc:faces?n=20000',
        'data.xflip': True,
        'demo_outputs': True,
        'from_scratch': False,
        'log.grid_kimg': 2.0,
        'log.snapshot_kimg': 2.0,
        'log.tick_kimg': 1.0,
        'model.channel_base': 2048,
        'model.channel_max': 64,
        'model.mapping_layers': 4,
        'model.w_dim': 128,
        'model.z_dim': 128,
        'name': 'demo',
        'stages': [
            {'name': 'parent', 'overrides': {}, 'pretrained': ROOT + '/assets/demo/parent'},
            {
                'name': 'child',
                'overrides': {
                    'data.spec': 'proc:toons?n=2000',
                    'finetune.freeze_mapping': True,
                    'finetune.init_from': '{parent}',
                    'log.tick_kimg': 0.5,
                    'train.augment': 'ada',
                    'train.kimg': 4.0,
                },
            },
        ],
        'train.batch': 16,
        'train.d_lr': 0.0025,
        'train.ema_kimg': 5.0,
        'train.ema_rampup': 0.05,
        'train.g_lr': 0.0025,
        'train.kimg': 60.0,
        'train.r1_gamma': 0.0128,
    },
    'configs/demo_parent.py': {
        'data.resolution': 32,
        'data.spec': 'proc:faces?n=20000',
        'data.xflip': True,
        'log.grid_kimg': 5.0,
        'log.snapshot_kimg': 5.0,
        'log.tick_kimg': 1.0,
        'model.channel_base': 2048,
        'model.channel_max': 64,
        'model.mapping_layers': 4,
        'model.w_dim': 128,
        'model.z_dim': 128,
        'name': 'demo_parent',
        'train.batch': 16,
        'train.d_lr': 0.0025,
        'train.ema_kimg': 5.0,
        'train.ema_rampup': 0.05,
        'train.g_lr': 0.0025,
        'train.kimg': 200.0,
        'train.r1_gamma': 0.0128,
    },
    'configs/paper1024.py': {'data.resolution': 1024, 'train.r1_gamma': 2.0},
    'configs/paper256.py': {
        'model.channel_base': 16384,
        'model.mbstd_group_size': 8,
        'train.batch': 64,
        'train.d_lr': 0.0025,
        'train.ema_kimg': 20.0,
        'train.g_lr': 0.0025,
        'train.r1_gamma': 1.0,
    },
    'configs/paper512.py': {
        'data.resolution': 512,
        'model.mbstd_group_size': 8,
        'train.batch': 64,
        'train.d_lr': 0.0025,
        'train.ema_kimg': 20.0,
        'train.g_lr': 0.0025,
        'train.r1_gamma': 0.5,
    },
    'configs/stylegan2.py': {'data.resolution': 1024},
    'configs/zoo/animals.py': {
        'data.resolution': 32,
        'data.spec': 'proc:animals?n=20000',
        'data.xflip': True,
        'finetune.init_from': ROOT + '/assets/zoo/parent',
        'log.grid_kimg': 2.0,
        'log.snapshot_kimg': 2.0,
        'log.tick_kimg': 0.5,
        'model.channel_base': 2048,
        'model.channel_max': 64,
        'model.mapping_layers': 4,
        'model.w_dim': 128,
        'model.z_dim': 128,
        'name': 'zoo_animals',
        'train.augment': 'ada',
        'train.batch': 16,
        'train.d_lr': 0.0025,
        'train.ema_kimg': 5.0,
        'train.ema_rampup': 0.05,
        'train.g_lr': 0.0025,
        'train.kimg': 4.0,
        'train.r1_gamma': 0.0128,
    },
    'configs/zoo/animals_faces.py': {
        'data.resolution': 32,
        'data.spec': 'proc:faces?n=20000',
        'data.xflip': True,
        'finetune.init_from': ROOT + '/assets/zoo/animals',
        'log.grid_kimg': 2.0,
        'log.snapshot_kimg': 2.0,
        'log.tick_kimg': 0.5,
        'model.channel_base': 2048,
        'model.channel_max': 64,
        'model.mapping_layers': 4,
        'model.w_dim': 128,
        'model.z_dim': 128,
        'name': 'zoo_animals_faces',
        'train.augment': 'ada',
        'train.batch': 16,
        'train.d_lr': 0.0025,
        'train.ema_kimg': 5.0,
        'train.ema_rampup': 0.05,
        'train.g_lr': 0.0025,
        'train.kimg': 4.0,
        'train.r1_gamma': 0.0128,
    },
    'configs/zoo/buildings.py': {
        'data.resolution': 32,
        'data.spec': 'proc:buildings?n=20000',
        'data.xflip': True,
        'finetune.init_from': ROOT + '/assets/zoo/parent',
        'log.grid_kimg': 2.0,
        'log.snapshot_kimg': 2.0,
        'log.tick_kimg': 0.5,
        'model.channel_base': 2048,
        'model.channel_max': 64,
        'model.mapping_layers': 4,
        'model.w_dim': 128,
        'model.z_dim': 128,
        'name': 'zoo_buildings',
        'train.augment': 'ada',
        'train.batch': 16,
        'train.d_lr': 0.0025,
        'train.ema_kimg': 5.0,
        'train.ema_rampup': 0.05,
        'train.g_lr': 0.0025,
        'train.kimg': 40.0,  # 20 until issue 9's buildings retrain
        'train.r1_gamma': 0.0128,
    },
    'configs/zoo/parent.py': {
        'data.resolution': 32,
        'data.spec': 'proc:faces?n=20000',
        'data.xflip': True,
        'finetune.init_from': ROOT + '/assets/demo/parent',
        'log.grid_kimg': 5.0,
        'log.snapshot_kimg': 5.0,
        'log.tick_kimg': 1.0,
        'model.channel_base': 2048,
        'model.channel_max': 64,
        'model.mapping_layers': 4,
        'model.w_dim': 128,
        'model.z_dim': 128,
        'name': 'zoo_parent',
        'train.batch': 16,
        'train.d_lr': 0.0025,
        'train.ema_kimg': 5.0,
        'train.ema_rampup': None,  # (was 0.05: it restarted G_ema's ramp-up)
        'train.g_lr': 0.0025,
        'train.kimg': 25.0,
        'train.r1_gamma': 0.0128,
    },
    'configs/zoo/toons.py': {
        'data.resolution': 32,
        'data.spec': 'proc:toons?n=20000',
        'data.xflip': True,
        'finetune.init_from': ROOT + '/assets/zoo/parent',
        'log.grid_kimg': 2.0,
        'log.snapshot_kimg': 2.0,
        'log.tick_kimg': 0.5,
        'model.channel_base': 2048,
        'model.channel_max': 64,
        'model.mapping_layers': 4,
        'model.w_dim': 128,
        'model.z_dim': 128,
        'name': 'zoo_toons',
        'train.augment': 'ada',
        'train.batch': 16,
        'train.d_lr': 0.0025,
        'train.ema_kimg': 5.0,
        'train.ema_rampup': 0.05,
        'train.g_lr': 0.0025,
        'train.kimg': 4.0,
        'train.r1_gamma': 0.0128,
    },
}

# Keys base_config declares now that the old files set ad hoc (or not at all), with their defaults.
NEW_KEYS = {
    'name': 'run',
    'from_scratch': False,
    'demo_outputs': False,
    'model.g_architecture': 'skip',
    'model.d_architecture': 'resnet',
    'model.impl.wgrad': 'xla',
}
SHIMS = {
    'configs/stylegan2.py': 'stylegan2',
    'configs/paper256.py': 'paper256',
    'configs/paper512.py': 'paper512',
    'configs/paper1024.py': 'paper1024',
    'configs/cifar.py': 'cifar',
    'configs/auto.py': 'auto',
    'configs/demo.py': 'demo',
    'configs/demo_parent.py': 'demo_parent',
    'configs/zoo/parent.py': 'zoo_parent',
    'configs/zoo/toons.py': 'zoo_toons',
    'configs/zoo/animals.py': 'zoo_animals',
    'configs/zoo/buildings.py': 'zoo_buildings',
    'configs/zoo/animals_faces.py': 'zoo_animals_faces',
}


def typed(config):
    """Flattened JSON values with their types (an int where a float was is a change)."""
    return {k: (type(v).__name__, v) for k, v in flatten(json.loads(config.to_json_best_effort())).items()}


def load_file(path):
    spec = importlib.util.spec_from_file_location('cfg_' + Path(path).stem, ROOT_PATH / path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.get_config()


def test_base_config_is_the_old_schema():
    assert typed(base_config()) == {k: (type(v).__name__, v) for k, v in {**OLD_BASE, **NEW_KEYS}.items()}


@pytest.mark.parametrize('path', sorted(OLD_PRESETS))
def test_every_preset_equals_the_old_config_file(path):
    want = {**OLD_BASE, **NEW_KEYS, **OLD_PRESETS[path]}
    want = {k: (type(v).__name__, v) for k, v in want.items()}
    assert typed(preset(SHIMS[path])) == want
    assert typed(get_config(SHIMS[path])) == want
    assert typed(load_file(path)) == want  # the shim file, as --config configs/x.py loads it


def field_types(c, prefix=''):
    out = {}
    for k in c.keys():
        if hasattr(c[k], 'keys'):
            out.update(field_types(c[k], f'{prefix}{k}.'))
        else:
            out[prefix + k] = c.get_ref(k).get_type()
    return out


def test_every_key_has_its_override_type():
    """A key whose default is None is a typed placeholder (`--config.train.ema_rampup=0.05` must parse); the
    others have their value's type."""
    placeholders = {
        'data.in_memory': bool,
        'data.max_images': int,
        'model.conv_clamp': float,
        'train.ema_rampup': float,
    }
    want = {
        k: placeholders.get(k, type(v) if not isinstance(v, list) else tuple)
        for k, v in {**OLD_BASE, **NEW_KEYS}.items()
    }
    assert field_types(base_config()) == want
    for name in PRESETS:
        assert field_types(preset(name)) == want, name


def test_every_preset_has_a_shim_and_names_are_config_names():
    assert sorted(SHIMS.values()) == sorted(PRESETS)
    for name in PRESETS:
        if name.startswith(('demo', 'zoo_')):
            assert preset(name).name == name


def test_unknown_preset_lists_the_presets():
    with pytest.raises(ConfigError, match="no preset 'paper257'; the presets are auto, stylegan2, paper256"):
        get_config('paper257')


def test_presets_are_fresh_copies():
    a = preset('paper256')
    a.train.batch = 1
    assert preset('paper256').train.batch == 64


# ---------------------------------------------------------------------------------------------------------
# Every default written once; the dataclasses built from the config sections.


def test_train_defaults_are_the_dataclass_defaults():
    c, hp = base_config(), TrainHParams()
    for f in dataclasses.fields(TrainHParams):
        if f.name in ('freeze_g', 'freeze_d'):
            assert f.name not in c.train
            continue
        assert c.train[f.name] == getattr(hp, f.name), f.name
    assert set(c.train) == {f.name for f in dataclasses.fields(TrainHParams)} - {'freeze_g', 'freeze_d'} | {'kimg'}
    assert dict(c.model.impl) == dataclasses.asdict(Impl())
    g, d = GeneratorConfig(), DiscriminatorConfig()
    assert set(c.model) == set(G_KEYS) | set(D_KEYS) | set(ARCH_KEYS) | {'impl'}
    assert (c.model.g_architecture, c.model.d_architecture) == (g.architecture, d.architecture)
    for k in G_KEYS:
        assert c.model[k] == getattr(g, k), k
    for k in D_KEYS:
        assert c.model[k] == getattr(d, k), k


def test_train_hparams_from_config_takes_every_train_key():
    c = base_config()
    assert TrainHParams.from_config(c) == TrainHParams()
    c.train.r1_gamma = 3  # an int where a float is meant: converted
    c.train.pl_interval = 7
    c.train.ema_rampup = 0.25
    c.train.betas = [0.5, 0.9]
    c.train.augment = 'ada'
    c.finetune.freeze_mapping = True
    c.finetune.freeze_g_regex = ('^synthesis/b4/',)
    c.finetune.freeze_d_regex = ('^b8/',)
    hp = TrainHParams.from_config(c)
    assert hp == dataclasses.replace(
        TrainHParams(),
        r1_gamma=3.0,
        pl_interval=7,
        ema_rampup=0.25,
        betas=(0.5, 0.9),
        augment='ada',
        freeze_g=('^synthesis/b4/', '^mapping/'),
        freeze_d=('^b8/',),
    )
    assert isinstance(hp.r1_gamma, float) and isinstance(hp.betas, tuple)
    hash(hp)  # a jit cache key


def test_impl_and_model_configs_from_config():
    c = base_config()
    c.model.impl.dtype = 'bfloat16'
    c.model.impl.modconv = 'grouped'
    c.model.w_dim = 64
    c.model.conv_clamp = 256.0
    c.model.mbstd_group_size = 2
    assert from_section(Impl, c.model.impl) == Impl(modconv='grouped', dtype='bfloat16')
    g, d = model_configs(c, 64, 3)
    impl = Impl('grouped', dtype='bfloat16')
    assert g == GeneratorConfig(resolution=64, c_dim=3, w_dim=64, conv_clamp=256.0, impl=impl)
    assert d == DiscriminatorConfig(resolution=64, c_dim=3, conv_clamp=256.0, mbstd_group_size=2, impl=impl)


# ---------------------------------------------------------------------------------------------------------
# lock_config: every key is declared; an unknown one is an error (in the library and on the command line).


def test_locked_config_rejects_unknown_keys():
    c = preset('paper256')
    c.lock()
    with pytest.raises(AttributeError):
        c.train.kimgg = 1.0
    with pytest.raises(AttributeError):
        c.foo = 1
    c.train.kimg = 1.0  # declared keys still change


def test_stage_overrides_name_declared_keys_with_their_types():
    """A multi-stage config's overrides are checked before anything runs: a typo is an error (it never adds a
    key the stage then ignores), so is a section or a value of the wrong type; the demo's stages pass."""
    validate_config(preset('demo'))
    for overrides, msg in (
        ({'train.kimgs': 4.0}, "no config key 'train.kimgs' (train has "),
        ({'fintune.init_from': 'x'}, "no config key 'fintune.init_from' (the config has "),
        ({'train': 1.0}, "'train' is a section, not a value"),
        ({'train.kimg': 'four'}, 'train.kimg='),
    ):
        c = preset('demo')
        c.stages = (dict(name='child', overrides=overrides),)
        with pytest.raises(ConfigError, match='the overrides of stage .child.: ' + re.escape(msg)):
            validate_config(c)
    c = preset('demo')
    c.stages = (dict(name='child', overide={}),)
    with pytest.raises(ConfigError, match=re.escape("unknown field(s) ['overide']")):
        validate_config(c)


def cli(*args, cwd=None):
    env = dict(os.environ, JAX_PLATFORMS='cpu')
    env.pop('ALIGNJAX_DEBUG', None)
    return subprocess.run(
        [sys.executable, '-m', 'alignjax.cli.train', *args],
        cwd=cwd or ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def error_line(p, rc):
    lines = [s for s in p.stderr.splitlines() if s.strip()]
    assert p.returncode == rc and len(lines) == 1 and lines[0].startswith('error: '), (p.returncode, p.stderr[-3000:])
    return lines[0]


def test_cli_rejects_unknown_key_of_a_preset(tmp_path):
    line = error_line(cli('--config', 'paper256', '--config.foo=1', f'--workdir={tmp_path / "w"}'), 2)
    assert line == 'error: --config.foo: no such config key (alignjax-train --help lists the keys)'
    line = error_line(cli('--config', 'paper256', '--config.train.r1_gama=1', f'--workdir={tmp_path / "w"}'), 2)
    assert line.startswith('error: --config.train.r1_gama: no such config key (did you mean --config.train.r1_gamma')
    line = error_line(cli('--config', 'paper257'), 2)
    assert line.startswith('error: --config paper257: no such config file or preset (the presets are auto, ')
    assert not (tmp_path / 'w').exists()


def test_cli_preset_name_and_overrides_reach_the_config(tmp_path):
    """`--config paper256` loads the preset; an override is applied and type-checked (a bad value is one line)."""
    line = error_line(cli('--config', 'paper256', '--config.train.kimg=-2', f'--workdir={tmp_path / "w"}'), 1)
    assert line == 'error: --config.train.kimg=-2.0: must be positive'
    line = error_line(
        cli(
            '--config',
            'paper256',
            '--config.train.ema_rampup=0.05',
            '--config.model.conv_clamp=256',
            '--config.data.max_images=10',
            '--config.data.resolution=100',
            f'--workdir={tmp_path / "w"}',
        ),
        1,
    )
    assert line == 'error: --config.data.resolution=100: must be a power of two, at least 4'


def test_cifar_preset_is_nvlabs_cifar():
    """NVlabs train.py's cifar row and its special case: no path length, no style mixing, an 'orig' D."""
    c = get_config('cifar')
    assert (c.data.resolution, c.train.batch, c.model.mbstd_group_size, c.model.mapping_layers) == (32, 64, 32, 2)
    assert (c.train.r1_gamma, c.train.ema_kimg, c.train.ema_rampup) == (0.01, 500.0, 0.05)
    assert c.train.pl_weight == 0.0 and c.train.style_mixing == 0.0 and c.model.d_architecture == 'orig'
    assert get_config('paper256').model.d_architecture == 'resnet'
