"""The 'stylegan2' preset (alignjax/configs/presets.py); kept so `--config configs/stylegan2.py` works (so does `--config stylegan2`)."""
from alignjax.configs import preset

get_config = lambda: preset('stylegan2')  # noqa: E731
