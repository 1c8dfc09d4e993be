"""StyleAlign's analyses of aligned parent/child generators, scored on any labeller with the Evaluator contract.

    from alignjax import analysis as A
    A.weight_changes(parent, child)                                # (1) what changes in fine-tuning
    A.reset_hybrids(parent, child, child_ev, reference)            #     child with one component reset
    A.pointwise_alignment(parent, child, parent_ev, child_ev)      # (2) same z / w through both
    A.semantic_alignment(parent, child, parent_ev, child_ev)       # (3) W directions, S channels, transfer
    A.localised_channels(parent, child, parent_ev, child_ev)       #     S channels by gradient maps vs masks
    A.forgotten_directions(parent, models, parent_ev, labellers)   # (5) the glasses direction
    A.translation_methods(parent, child, parent_ev, child_ev)      # (6) Z+psi / W / W+ / W+noise / layer swap
    A.zero_shot(parent, child, parent_ev, child_domain=...)        # (7) parent supervision only
    A.morph_quality(parent, child, child_ev)                       # (8) endpoint fidelity, smoothness

Every function returns a small dataclass (`alignjax.analysis.common.jsonable` turns it into JSON); the report
(`python -m alignjax.analysis.report`, `alignjax/cli/report.py`) renders them.
"""

import sys

from alignjax.analysis import morphs
from alignjax.analysis.changes import ResetResult, WeightChanges, reference_features, reset_hybrids, weight_changes
from alignjax.analysis.common import AnalysisError, Labeller, NotAFineTuneWarning, as_labeller, check_pair, jsonable
from alignjax.analysis.forgotten import ForgottenResult, forgotten_directions, glasses_direction
from alignjax.analysis.morphs import MorphResult, morph_quality
from alignjax.analysis.pointwise import PointwiseResult, pointwise_alignment
from alignjax.analysis.semantic import (
    LocalisedResult,
    SemanticResult,
    gradient_maps,
    localised_channels,
    s_relevance,
    semantic_alignment,
    w_directions,
)

__all__ = [
    'AnalysisError',
    'ForgottenResult',
    'Labeller',
    'MorphResult',
    'NotAFineTuneWarning',
    'PointwiseResult',
    'ResetResult',
    'SemanticResult',
    'WeightChanges',
    'as_labeller',
    'check_pair',
    'forgotten_directions',
    'glasses_direction',
    'jsonable',
    'morph_quality',
    'pointwise_alignment',
    'reference_features',
    'reset_hybrids',
    's_relevance',
    'semantic_alignment',
    'w_directions',
    'weight_changes',
]
from alignjax.analysis.translation import TranslationResult, invert_inputs, translation_methods  # noqa: E402
from alignjax.analysis.zeroshot import ZeroShotResult, fit_latent_models, zero_shot  # noqa: E402

__all__ += [
    'LocalisedResult',
    'gradient_maps',
    'localised_channels',
    'TranslationResult',
    'ZeroShotResult',
    'fit_latent_models',
    'invert_inputs',
    'translation_methods',
    'zero_shot',
]

# the module was morph_quality.py, which its function shadowed; the old path still imports
sys.modules.setdefault('alignjax.analysis.morph_quality', morphs)
