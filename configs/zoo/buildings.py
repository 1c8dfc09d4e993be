"""Zoo model 'buildings': preset 'zoo_buildings' of alignjax/configs/presets.py (`make zoo` trains the zoo)."""

from alignjax.configs import preset

get_config = lambda: preset('zoo_buildings')  # noqa: E731
