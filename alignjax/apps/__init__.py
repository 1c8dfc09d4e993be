"""Applications of aligned parent/child generators (a child fine-tuned from a parent keeps latent alignment).

* Translation (`translate`): invert in the parent, decode the same latent with each child (StyleAlign I2I).
* Layer swapping (`layer_swap`): per-resolution hard or logistic blend of the synthesis weights (Toonify).
* Cross-domain morphing (`morph`): lerp the latent and every synthesis weight, frames batched through
  `pair_synthesis` (two shared-weight convolutions per layer instead of per-frame weights).
* Writers: `save_animation` (GIF, MP4 via imageio-ffmpeg with a GIF fallback, strip PNG), `save_translation`
  (grid PNG + HTML).

Everything takes `alignjax.Generator` objects (config + variables pytree), so it works from a notebook with
weights built in memory. Command lines (alignjax/cli/): `alignjax-invert --translate`, `alignjax-morph`,
`alignjax-layer-swap` (the old `python -m alignjax.apps.morphing` / `python -m alignjax.apps.layer_swap` still run).

Modules: `blend`, `layer_swap`, `morphing` (the function `morph`; the module was `morph.py`, which the function
shadowed), `translate`, `video`.
"""

import sys

from alignjax.apps import morphing
from alignjax.apps.blend import blend_variables, check_compatible, lerp_variables, pair_synthesis
from alignjax.apps.layer_swap import layer_swap, swap_alphas
from alignjax.apps.morphing import endpoints, morph
from alignjax.apps.translate import Translation, decode_children, save_translation, translate
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

# The old module path keeps importing (`from alignjax.apps.morph import morph` in apps/demo.py, bench/morph.py,
# users' scripts) while `alignjax.apps.morph`, the attribute, is the function. The command line is
# `alignjax-morph` (alignjax/cli/morph.py).
sys.modules.setdefault('alignjax.apps.morph', morphing)
