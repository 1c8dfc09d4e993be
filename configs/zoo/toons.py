"""Zoo model 'toons': preset 'zoo_toons' of alignjax/configs/presets.py (`make zoo` trains the zoo)."""

from alignjax.configs import preset

get_config = lambda: preset('zoo_toons')  # noqa: E731
