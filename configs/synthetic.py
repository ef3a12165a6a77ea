"""The main job: a one-stream ResNet18 on the built-in synthetic RGB-D dataset.

  python -m jaxreid.main --config=configs/synthetic.py --workdir=/tmp/jaxreid/synthetic

Trains on batches that mix RGB and depth images of the same identities (the one-stream
cross-modal network, Hafner 2018 §3.1) with the softmax loss and SGD with Nesterov momentum
(§4.3.2), keeps the checkpoint with the best validation cross-modal mAP, and reports rank-1/5/10
and mAP on the test identities for the four query/gallery modality pairs (Table 5 layout).
Reaches (2-core CPU, see README): finishes in under 10 minutes.

`:quick` trains a reduced-width network for a few steps (under 2 minutes on 2 CPU cores).
"""

from jaxreid.config import default_config


def get_config(arg: str = ""):
  config = default_config()
  if arg == "quick":
    apply_quick(config)
  elif arg:
    raise ValueError(f"Unknown config argument {arg!r}; expected '' or 'quick'.")
  return config


def apply_quick(config):
  """A few steps of a reduced-width network on a small synthetic set (tests, smoke checks)."""
  config.model.width = 8
  config.model.embedding_size = 32
  config.data.image_size = (32, 16)
  config.data.synthetic.num_train_ids = 12
  config.data.synthetic.num_val_ids = 6
  config.data.synthetic.num_test_ids = 6
  config.batch.num_identities = 4
  config.batch.images_per_identity = 4
  config.batch.eval_batch_size = 64
  config.num_train_steps = 20
  config.log_every_steps = 5
  config.eval_every_steps = 10
  config.checkpoint_every_steps = 10
  config.optim.warmup_steps = 2
  config.eval.repeats = 2
