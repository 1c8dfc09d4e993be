"""Applications of aligned parent/child generators (a child fine-tuned from a parent keeps latent alignment).

* Translation (`translate`): invert in the parent, decode the same latent with each child (StyleAlign I2I).
* Layer swapping (`layer_swap`): per-resolution hard or logistic blend of the synthesis weights (Toonify).
* Cross-domain morphing (`morph`): lerp the latent and every synthesis weight, frames batched through
  `pair_synthesis` (two shared-weight convolutions per layer instead of per-frame weights).
* Writers: `save_animation` (GIF, MP4 via imageio-ffmpeg with a GIF fallback, strip PNG), `save_translation`
  (grid PNG + HTML).

Everything takes `alignjax.Generator` objects (config + variables pytree), so it works from a notebook with
weights built in memory. Command lines (alignjax/cli/): `alignjax-invert --translate`, `alignjax-morph`,
`alignjax-layer-swap` (the old `python -m alignjax.apps.morphing` / `python -m alignjax.apps.swapping` still run).

Modules, named apart from the functions they export so that neither shadows the other: `blend`, `morphing`
(`morph`), `swapping` (`layer_swap`), `translation` (`translate`), `video`. The old module paths
`alignjax.apps.morph`, `.layer_swap` and `.translate` still import (`from alignjax.apps.layer_swap import
layer_swap` in existing scripts); as attributes of `alignjax.apps` those names are the functions.
"""

import sys

from alignjax.apps import morphing, swapping, translation
from alignjax.apps.blend import blend_variables, check_compatible, lerp_variables, pair_synthesis
from alignjax.apps.morphing import endpoints, morph
from alignjax.apps.swapping import layer_swap, swap_alphas
from alignjax.apps.translation import Translation, decode_children, save_translation, translate
from alignjax.apps.video import save_animation, strip, write_gif, write_mp4, write_strip

__all__ = [
    'Translation',
    'blend_variables',
    'check_compatible',
    'decode_children',
    'endpoints',
    'layer_swap',
    'lerp_variables',
    'morph',
    'pair_synthesis',
    'save_animation',
    'save_translation',
    'strip',
    'swap_alphas',
    'translate',
    'write_gif',
    'write_mp4',
    'write_strip',
]

# The old module paths keep importing (`from alignjax.apps.morph import morph` in bench/morph.py and users'
# scripts) while `alignjax.apps.morph` etc., the attributes, are the functions. The command lines are
# `alignjax-morph` and `alignjax-layer-swap` (alignjax/cli/).
for _old, _module in (('morph', morphing), ('layer_swap', swapping), ('translate', translation)):
    sys.modules.setdefault(f'alignjax.apps.{_old}', _module)
