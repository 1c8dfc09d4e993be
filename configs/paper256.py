"""Preset 'paper256' of alignjax/configs/presets.py (`--config configs/paper256.py` = `--config paper256`)."""

from alignjax.configs import preset

get_config = lambda: preset('paper256')  # noqa: E731
