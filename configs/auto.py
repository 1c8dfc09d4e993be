"""Preset 'auto' of alignjax/configs/presets.py (`--config configs/auto.py` = `--config auto`)."""

from alignjax.configs import preset

get_config = lambda: preset('auto')  # noqa: E731
