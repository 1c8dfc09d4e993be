"""The 'auto' preset (alignjax/configs/presets.py); kept so `--config configs/auto.py` works (so does `--config auto`)."""
from alignjax.configs import preset

get_config = lambda: preset('auto')  # noqa: E731
