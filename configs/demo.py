"""Preset 'demo' of alignjax/configs/presets.py (`--config configs/demo.py` = `--config demo`)."""

from alignjax.configs import preset

get_config = lambda: preset('demo')  # noqa: E731
