"""Preset 'stylegan2' of alignjax/configs/presets.py (`--config configs/stylegan2.py` = `--config stylegan2`)."""

from alignjax.configs import preset

get_config = lambda: preset('stylegan2')  # noqa: E731
