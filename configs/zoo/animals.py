"""Zoo model 'animals': preset 'zoo_animals' of alignjax/configs/presets.py (`make zoo` trains the zoo)."""

from alignjax.configs import preset

get_config = lambda: preset('zoo_animals')  # noqa: E731
