"""Applications of aligned parent/child generators: translation, layer swapping, cross-domain morphing."""
from alignjax.apps.blend import blend_variables, check_compatible, lerp_variables, pair_synthesis
from alignjax.apps.layer_swap import layer_swap, swap_alphas
from alignjax.apps.morph import endpoints, morph
from alignjax.apps.translate import Translation, decode_children, save_translation, translate
from alignjax.apps.video import save_animation, strip, write_gif, write_mp4, write_strip

__all__ = ['Translation', 'blend_variables', 'check_compatible', 'decode_children', 'endpoints', 'layer_swap',
           'lerp_variables', 'morph', 'pair_synthesis', 'save_animation', 'save_translation', 'strip',
           'swap_alphas', 'translate', 'write_gif', 'write_mp4', 'write_strip']
