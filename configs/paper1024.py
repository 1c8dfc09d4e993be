"""The 'paper1024' preset (alignjax/configs/presets.py); kept so `--config configs/paper1024.py` works (so does `--config paper1024`)."""
from alignjax.configs import preset

get_config = lambda: preset('paper1024')  # noqa: E731
