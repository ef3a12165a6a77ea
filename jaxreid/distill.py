"""`train_and_evaluate(config, workdir)` of the two-step cross-modal distillation trainer
(Hafner 2018 §3.3; jaxreid.training.distillation).

Kept so that `from jaxreid import distill; distill.train_and_evaluate(...)` keeps working; the
trainer lives in `jaxreid.training`.
"""

from jaxreid.training.distillation import train_and_evaluate

__all__ = ["train_and_evaluate"]
