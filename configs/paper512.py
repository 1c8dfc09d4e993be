"""Preset 'paper512' of alignjax/configs/presets.py (`--config configs/paper512.py` = `--config paper512`)."""

from alignjax.configs import preset

get_config = lambda: preset('paper512')  # noqa: E731
