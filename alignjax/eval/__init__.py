"""Domain evaluators (the benchmark's rulers) and the benchmark's model zoo.

ev = load_evaluator('faces', 32)    # a small CNN reading factors, landmarks and masks from images
acc = evaluate(ev, n=2000)          # held-out accuracy on renders it never saw
ck = load_zoo('toons')              # a shipped zoo model (alignjax Checkpoint)
"""

from alignjax.eval.evaluator import (
    Evaluator,
    EvaluatorConfig,
    EvaluatorError,
    expressed_factors,
    load_evaluator,
    new_evaluator,
)
from alignjax.eval.scores import evaluate, factor_scores, landmark_scores, mask_scores
from alignjax.eval.zoo import ZOO, load_zoo, zoo_card, zoo_config

__all__ = [
    'Evaluator',
    'EvaluatorConfig',
    'EvaluatorError',
    'ZOO',
    'evaluate',
    'expressed_factors',
    'factor_scores',
    'landmark_scores',
    'load_evaluator',
    'load_zoo',
    'mask_scores',
    'new_evaluator',
    'zoo_card',
    'zoo_config',
]
