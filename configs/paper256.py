"""The 'paper256' preset (alignjax/configs/presets.py); kept so `--config configs/paper256.py` works (so does `--config paper256`)."""
from alignjax.configs import preset

get_config = lambda: preset('paper256')  # noqa: E731
