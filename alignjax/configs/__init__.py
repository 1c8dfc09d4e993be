"""Training configs in the package: the preset table (alignjax/configs/presets.py) over the schema of
alignjax/train/config.py.

    import alignjax.configs
    config = alignjax.configs.get_config('paper256')     # ConfigDict; an unknown name raises ConfigError
    alignjax.configs.PRESETS                             # name -> builder
"""

from alignjax.configs.presets import CFG_SPECS, DEFAULT, PRESETS, get_config, preset

__all__ = ['CFG_SPECS', 'DEFAULT', 'PRESETS', 'get_config', 'preset']
