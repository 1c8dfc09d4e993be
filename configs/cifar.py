"""Preset 'cifar' of alignjax/configs/presets.py (`--config configs/cifar.py` = `--config cifar`)."""

from alignjax.configs import preset

get_config = lambda: preset('cifar')  # noqa: E731
