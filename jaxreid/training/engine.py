"""The compiled functions of one run: its mesh, model, optimiser, step and embedding.

Built once per network and used by every phase of a run (train, validate, test). Imports no
TensorFlow: the steps and the embedding work on NumPy batches.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.experimental import multihost_utils

from jaxreid import batching, mixed_precision, models
from jaxreid.data import preprocessing
from jaxreid.data.eval_batches import eval_batches
from jaxreid.data.image_set import ImageSet
from jaxreid.training import optimizers, steps
from jaxreid.training.state import Mesh, TrainState


class Engine:
    """A network and its compiled step and embedding on a data-parallel mesh.

    Attributes:
      config: the run's config.
      mesh: the `Mesh` (shardings, `global_batch`).
      model: the Flax network (`models.model_from_config`).
      schedule, tx: learning-rate schedule and optimiser of `optim`.
      image_shape: (H, W, C) network input.
      init_key, dropout_key: split from key(config.seed); the step folds the step number
        into dropout_key.
      eval_batch_size: config.batch.eval_batch_size rounded up to a multiple of the device
        count (evaluation pads, so any device count works).
    """

    def __init__(
        self,
        config: ml_collections.ConfigDict,
        num_classes: int,
        image_shape: Sequence[int],
        *,
        devices=None,
        optim: ml_collections.ConfigDict | None = None,
        num_steps: int | None = None,
    ):
        """Args: optim, num_steps: default config.optim and config.num_train_steps."""
        self.config = config
        self.mesh = Mesh(devices)
        self.model = models.model_from_config(config, num_classes)
        self.num_steps = config.num_train_steps if num_steps is None else num_steps
        optim = config.optim if optim is None else optim
        self.schedule = optimizers.learning_rate_schedule(optim, self.num_steps)
        self.tx = mixed_precision.with_loss_scaling(
            optimizers.create_optimizer(optim, self.schedule), config.model.dtype
        )
        self.image_shape = tuple(image_shape)
        self.init_key, self.dropout_key = jax.random.split(jax.random.key(config.seed))
        self.eval_batch_size = batching.round_up(config.batch.eval_batch_size, self.mesh.size)
        self._embed = jax.jit(
            functools.partial(
                steps.embed_step,
                model=self.model,
                feature=config.eval.feature,
                flip=config.eval.flip_test,
            ),
            in_shardings=(self.mesh.replicated, self.mesh.data, self.mesh.data),
            out_shardings=self.mesh.data,
        )
        self.train_step = self.compile_step(
            functools.partial(
                steps.train_step,
                model=self.model,
                tx=self.tx,
                schedule=self.schedule,
                loss_config=config.loss,
                dropout_key=self.dropout_key,
            )
        )

    def compile_step(self, step_fn: Callable) -> Callable:
        """`step_fn(state, batch, health) -> (state, metrics, health)` compiled for the mesh:
        batch sharded, the rest replicated, the input state donated."""
        replicated = self.mesh.replicated
        return jax.jit(
            step_fn,
            in_shardings=(replicated, self.mesh.data, replicated),
            out_shardings=(replicated, replicated, replicated),
            donate_argnums=0,
        )

    def variables_shape(self):
        """The shapes of the model's variables (nothing is computed)."""
        dummy = jnp.zeros((1, *self.image_shape), jnp.float32)
        return jax.eval_shape(
            lambda key: self.model.init({"params": key, "dropout": key}, dummy, train=False),
            self.init_key,
        )

    def init_state(
        self, tx: optax.GradientTransformation | None = None, key: jax.Array | None = None
    ) -> TrainState:
        """The initial state (from `key`, default `init_key`, or `config.model.pretrained`
        weights), created directly with replicated sharding."""
        tx = self.tx if tx is None else tx

        def init(key):
            dummy = jnp.zeros((1, *self.image_shape), jnp.float32)
            variables = self.model.init({"params": key, "dropout": key}, dummy, train=False)
            variables = flax.core.unfreeze(variables)
            params = variables.pop("params")
            return TrainState(
                step=jnp.zeros((), jnp.int32),
                params=params,
                model_state=variables,
                opt_state=tx.init(params),
            )

        state = jax.jit(init, out_shardings=self.mesh.replicated)(
            self.init_key if key is None else key
        )
        if self.config.model.pretrained:
            state = self._load_pretrained(state, tx)
        return state

    def state_from_variables(
        self, params, model_state, tx: optax.GradientTransformation | None = None
    ) -> TrainState:
        """A step-0 state with the given variables (copied: the step donates its input)."""
        tx = self.tx if tx is None else tx
        params = jax.tree.map(jnp.copy, params)
        model_state = jax.tree.map(jnp.copy, model_state)
        state = TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            model_state=model_state,
            opt_state=tx.init(params),
        )
        return jax.device_put(state, self.mesh.replicated)

    def _load_pretrained(self, state: TrainState, tx) -> TrainState:
        from jaxreid.models import pretrained  # torch/safetensors are imported only if used.

        variables = pretrained.merge_into(
            state.variables,
            pretrained.load_torchvision_resnet(
                self.config.model.pretrained,
                self.config.model.backbone,
                in_channels=self.image_shape[-1],
            ),
        )
        variables = dict(variables)
        params = variables.pop("params")
        state = state.replace(params=params, model_state=variables, opt_state=tx.init(params))
        return jax.device_put(state, self.mesh.replicated)

    def embed(
        self, variables, image_set: ImageSet, norm: preprocessing.Normalization
    ) -> np.ndarray:
        """[N, D] float32 features of every image of `image_set`, in its order, on every host.

        Args:
          variables: {'params': ..., **model_state} (e.g. `state.variables`).
          norm: the normalisation of `image_set`'s modality.
        """
        outputs = []
        slot = list(self.config.data.modalities).index(image_set.modality)
        for batch in eval_batches(
            image_set,
            norm,
            layout=self.config.data.input_layout,
            slot=slot,
            global_batch=self.eval_batch_size,
            process_index=jax.process_index(),
            process_count=jax.process_count(),
        ):
            batch["modality"] = np.full(len(batch["image"]), slot, np.int32)
            batch = self.mesh.global_batch(batch)
            emb = self._embed(variables, batch["image"], batch["modality"])
            emb, mask = multihost_utils.process_allgather((emb, batch["mask"]), tiled=True)
            outputs.append(np.asarray(emb)[np.asarray(mask)])
        return np.concatenate(outputs)

    def embedder(
        self,
        variables_by_modality: Mapping[str, dict],
        norms: Mapping[str, preprocessing.Normalization],
    ) -> Callable[[str, ImageSet], np.ndarray]:
        """The `Embed` of evaluation (jaxreid.evaluation.experiment): `embed(modality,
        image_set)` -> [N, D] float32 features by `variables_by_modality[modality]` (one
        network for every modality, or distillation's F and G) with that modality's
        normalisation."""
        return lambda modality, image_set: self.embed(
            variables_by_modality[modality], image_set, norms[modality]
        )
