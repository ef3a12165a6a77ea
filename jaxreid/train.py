"""`train_and_evaluate(config, workdir)` of the supervised trainer (jaxreid.training.supervised).

Kept so that `from jaxreid import train; train.train_and_evaluate(...)` (notebooks, user
scripts) keeps working; the trainer lives in `jaxreid.training`.
"""

from jaxreid.training.supervised import train_and_evaluate

__all__ = ["train_and_evaluate"]
