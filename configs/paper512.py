"""The 'paper512' preset (alignjax/configs/presets.py); kept so `--config configs/paper512.py` works (so does `--config paper512`)."""
from alignjax.configs import preset

get_config = lambda: preset('paper512')  # noqa: E731
