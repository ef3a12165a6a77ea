"""A self-contained re-id train step for the benchmarks (not jaxreid.train's).

Built from the library's public pieces only (jaxreid.models, jaxreid.losses, optax), so the
benchmarks measure the model's compute and do not depend on the trainer's internals:
ResNet backbone + ReIDNet head (embedding 128, BNNeck-free, dropout 0.5; Hafner 2018 §4.3.2),
softmax cross-entropy on the logits plus, optionally, the batch-hard triplet loss on the
pooled features, SGD with Nesterov momentum 0.9 and coupled weight decay 5e-4.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxreid import losses
from jaxreid.models import create_model


class State(NamedTuple):
    params: Any
    batch_stats: Any
    opt_state: Any


def build(
    backbone: str,
    *,
    num_classes: int = 100,
    dtype: str = "float32",
    conv_impl: str = "xla",
    triplet: bool = True,
    width: int = 64,
):
    """(model, init_fn(images) -> State, step_fn(state, images, labels, key) -> (state, loss)).

    step_fn is not jitted; callers jit it (with donation) so they can also lower it for
    XLA's cost analysis.
    """
    model = create_model(
        backbone,
        num_classes=num_classes,
        embedding_size=128,
        dropout_rate=0.5,
        width=width,
        dtype=dtype,
        conv_impl=conv_impl,
    )
    optimizer = optax.chain(
        optax.add_decayed_weights(5e-4), optax.sgd(0.01, momentum=0.9, nesterov=True)
    )

    def init_fn(images):
        variables = model.init(jax.random.key(0), images[:1], train=False)
        params = variables["params"]
        return State(params, variables["batch_stats"], optimizer.init(params))

    def step_fn(state: State, images, labels, key):
        def loss_fn(params):
            (_, inter), updates = model.apply(
                {"params": params, "batch_stats": state.batch_stats},
                images,
                train=True,
                mutable=["batch_stats"],
                rngs={"dropout": key},
            )
            loss = losses.softmax_cross_entropy(inter["logits"], labels)
            if triplet:
                loss = loss + losses.batch_hard_triplet(inter["pooled"], labels, margin=0.5)
            return loss, updates["batch_stats"]

        (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        return State(optax.apply_updates(state.params, updates), batch_stats, opt_state), loss

    return model, init_fn, step_fn


def random_batch(batch: int, height: int, width: int, num_classes: int = 100, seed: int = 0):
    """images [B, H, W, 3] float32 N(0, 1) and labels [B] int32 in P x K = B/4 x 4 order."""
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(batch, height, width, 3)).astype(np.float32)
    labels = (np.arange(batch) // 4 % num_classes).astype(np.int32)
    return jnp.asarray(images), jnp.asarray(labels)


def compiled_flops(compiled) -> float:
    """FLOPs of one call of a compiled XLA executable, from XLA's cost analysis (0 if the
    backend reports none). `jitted.lower(*args).compile()` gives `compiled`."""
    analysis = compiled.cost_analysis()
    if isinstance(analysis, (list, tuple)):  # Older jax: one dict per device program.
        analysis = analysis[0] if analysis else {}
    return float((analysis or {}).get("flops", 0.0))
