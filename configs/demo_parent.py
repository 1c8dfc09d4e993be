"""Preset 'demo_parent' of alignjax/configs/presets.py (`--config configs/demo_parent.py` = `--config demo_parent`)."""

from alignjax.configs import preset

get_config = lambda: preset('demo_parent')  # noqa: E731
