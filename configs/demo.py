"""The 'demo' preset (alignjax/configs/presets.py); kept so `--config configs/demo.py` works (so does `--config demo`)."""
from alignjax.configs import preset

get_config = lambda: preset('demo')  # noqa: E731
