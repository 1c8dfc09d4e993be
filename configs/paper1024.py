"""Preset 'paper1024' of alignjax/configs/presets.py (`--config configs/paper1024.py` = `--config paper1024`)."""

from alignjax.configs import preset

get_config = lambda: preset('paper1024')  # noqa: E731
