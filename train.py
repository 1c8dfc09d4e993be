"""Train a StyleGAN2 from scratch, or fine-tune a child from any checkpoint alignjax reads.

    python train.py --config configs/paper256.py --config.data.spec=zip:/data/ffhq256.zip --workdir runs/ffhq
    python train.py --config configs/auto.py --config.data.spec=folder:/data/toons \\
        --config.finetune.init_from=runs/ffhq/final --config.train.augment=ada --workdir runs/toons
    python train.py --config configs/demo.py --workdir runs/demo          # the demo: parent, then child

Resumes automatically when the workdir has a checkpoint (--config.resume=False refuses instead).
Multi-host: pass --multihost (calls jax.distributed.initialize(); the global batch is split over hosts).
"""
import sys

from absl import app, flags, logging
from ml_collections import config_flags

config_flags.DEFINE_config_file('config', 'configs/demo.py', 'ml_collections config file', lock_config=False)
flags.DEFINE_string('workdir', None, 'output directory (checkpoints, samples, metrics, final model)')
flags.DEFINE_bool('multihost', False, 'initialise jax.distributed (TPU pods, multi-node GPU)')
FLAGS = flags.FLAGS


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)   # orbax logs every save at INFO
    import jax
    if FLAGS.multihost:
        jax.distributed.initialize()
    from alignjax.data import BadImageError, EmptyDatasetError
    from alignjax.io.safe_pickle import CheckpointError
    from alignjax.train.loop import TrainingDiverged, run
    workdir = FLAGS.workdir or f'runs/{FLAGS["config"].value.get("name", "run")}'
    try:
        run(FLAGS.config, workdir)
    except (TrainingDiverged, CheckpointError, BadImageError, EmptyDatasetError, FileExistsError,
            FileNotFoundError, ValueError) as e:
        sys.exit(f'error: {e}')


if __name__ == '__main__':
    app.run(main)
