"""Zoo model 'parent' (see alignjax/eval/zoo.py; `make zoo` trains the whole zoo in order)."""
from alignjax.eval.zoo import zoo_config


def get_config():
    return zoo_config('parent')
