"""Zoo model 'parent': preset 'zoo_parent' of alignjax/configs/presets.py (`make zoo` trains the zoo)."""

from alignjax.configs import preset

get_config = lambda: preset('zoo_parent')  # noqa: E731
