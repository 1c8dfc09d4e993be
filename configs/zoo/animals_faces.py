"""Zoo model 'animals_faces': preset 'zoo_animals_faces' of alignjax/configs/presets.py (`make zoo` trains the zoo)."""

from alignjax.configs import preset

get_config = lambda: preset('zoo_animals_faces')  # noqa: E731
