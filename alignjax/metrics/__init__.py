"""Distribution metrics over any feature extractor: Fréchet distance, KID, precision/recall, FID.

    from alignjax.metrics import compute_metrics, fd_from_features, kid, precision_recall, load_inception
    res = compute_metrics(gen, 'proc:toons?n=20000', 'fd_eval10k,pr_eval10k')      # plain floats
    fid = compute_metrics(gen, 'zip:ffhq256.zip', 'fid50k', inception='pt_inception-2015-12-05-6726825d.pth')

    python -m alignjax.metrics --ckpt PATH --data SPEC --metrics fd_eval10k,kid_eval10k,pr_eval10k --out m.json

See `alignjax.metrics.distances` (the formulas), `.extractors` (the extractor protocol), `.inception` (FID's
Inception-v3, weights read torch-free) and `.compute` (metric names, generation, caching).
"""

from alignjax.metrics.compute import (
    METRIC_HELP,
    MetricsError,
    MetricSpec,
    compute_metrics,
    generate_images,
    generator_features,
    get_extractor,
    parse_metric,
    parse_metrics,
    real_features,
)
from alignjax.metrics.distances import (
    FeatureStats,
    fd_from_features,
    frechet_distance,
    kid,
    kid_subsets,
    knn_radii,
    mean_cov,
    precision_recall,
)
from alignjax.metrics.extractors import FeatureExtractor, PixelProjection, check_images, to_unit_range
from alignjax.metrics.inception import InceptionV3, inception_from_state_dict, load_inception

__all__ = [
    'METRIC_HELP',
    'FeatureExtractor',
    'FeatureStats',
    'InceptionV3',
    'MetricSpec',
    'MetricsError',
    'PixelProjection',
    'check_images',
    'compute_metrics',
    'fd_from_features',
    'frechet_distance',
    'generate_images',
    'generator_features',
    'get_extractor',
    'inception_from_state_dict',
    'kid',
    'kid_subsets',
    'knn_radii',
    'load_inception',
    'mean_cov',
    'parse_metric',
    'parse_metrics',
    'precision_recall',
    'real_features',
    'to_unit_range',
]
