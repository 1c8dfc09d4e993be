"""The 'demo_parent' preset (alignjax/configs/presets.py); kept so `--config configs/demo_parent.py` works (so does `--config demo_parent`)."""
from alignjax.configs import preset

get_config = lambda: preset('demo_parent')  # noqa: E731
