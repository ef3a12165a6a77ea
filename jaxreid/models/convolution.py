"""Convolution implementations selectable by config.model.conv_impl.

'auto'        (the default) 'gemm' for training on a CPU, 'xla' otherwise: on accelerators
              XLA's convolutions (cuDNN, TPU MXU) are the fast path, and inference and
              export keep real convolution ops (ONNX `Conv`).
'xla'         `lax.conv_general_dilated` and its automatic transpose rules.
'gemm'        im2col + one matrix product: for an NHWC input x, HWIO kernel [kh, kw, C, O],
              stride s,

                  y[n, p, q, o] = sum_{i,j,c} xpad[n, s p + i, s q + j, c] w[i, j, c, o]
                                = (patches @ w_flat)[(n, p, q), o],

              with patches [N Ho Wo, kh kw C] the strided windows of the padded input (a
              1x1 kernel needs no copy, only a strided slice). Its gradients are JAX's own:
              dW = patches^T @ g and dpatches = g @ w_flat^T are matrix products too, and
              dpatches goes back to the image by the transpose of the window slices (pads
              and adds that XLA fuses).
'gemm_wgrad'  XLA's forward convolution and input gradient, with the *weight* gradient as
              'gemm' computes it (a custom VJP).

Why: on CPU, XLA lowers convolutions to Eigen's spatial convolution, which on the small
feature maps of the main job (ResNet18 of width 16 at 64x32) runs at 6-8 GFLOP/s, while the
matrix products of the same FLOPs run on XLA's GEMM library at several times that. Measured
(benchmarks/cpu_vs_torch.py, 2-core AMD EPYC, 2026-12-07, docs/benchmarks.md): the main
job's step at 654 images/s with 'xla', 577 with 'gemm_wgrad', 933 with 'gemm'. Cost: the
patches are kept for the backward pass, kh*kw times the input's memory per 3x3
convolution. Numerics: the same products summed in another order, so results equal 'xla'
within float32 reduction-order tolerance.

All are drop-in values for flax's `nn.Conv(conv_general_dilated=...)`.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from jaxreid.config import choices

# Allowed values of config.model.conv_impl.
CONV_IMPLS = choices.CONV_IMPLS  # config.model.conv_impl

_NHWC = ("NHWC", "HWIO", "NHWC")


def _is_nhwc(dimension_numbers: Any) -> bool:
    if dimension_numbers is None:
        return False
    if isinstance(dimension_numbers, lax.ConvDimensionNumbers):
        return dimension_numbers == lax.conv_dimension_numbers((1, 1, 1, 1), (1, 1, 1, 1), _NHWC)
    return tuple(dimension_numbers) == _NHWC


def _im2col(x: jax.Array, kernel_hw: tuple[int, int], strides, padding, out_hw) -> jax.Array:
    """[N, H, W, C] -> [N * Ho * Wo, kh * kw * C] windows, column order (i, j, c) = HWIO's."""
    kh, kw = kernel_hw
    (sh, sw), (ho, wo) = strides, out_hw
    if (kh, kw) == (1, 1) and all(p == (0, 0) for p in padding):
        cols = x[:, : sh * (ho - 1) + 1 : sh, : sw * (wo - 1) + 1 : sw, :]
        return cols.reshape(-1, x.shape[-1])
    xpad = jnp.pad(x, ((0, 0), tuple(padding[0]), tuple(padding[1]), (0, 0)))
    taps = [
        lax.slice(
            xpad,
            (0, i, j, 0),
            (xpad.shape[0], i + sh * (ho - 1) + 1, j + sw * (wo - 1) + 1, xpad.shape[3]),
            (1, sh, sw, 1),
        )
        for i in range(kh)
        for j in range(kw)
    ]
    return jnp.concatenate(taps, axis=-1).reshape(-1, kh * kw * x.shape[-1])


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv_gemm_wgrad(x, w, strides, padding, precision):
    return lax.conv_general_dilated(
        x, w, strides, padding, dimension_numbers=_NHWC, precision=precision
    )


def _fwd(x, w, strides, padding, precision):
    return _conv_gemm_wgrad(x, w, strides, padding, precision), (x, w)


def _bwd(strides, padding, precision, residuals, g):
    x, w = residuals
    # Input gradient: XLA's own transpose of the convolution (only the weight gradient is
    # the slow one on CPU).
    _, input_vjp = jax.vjp(
        lambda x_: lax.conv_general_dilated(
            x_, w, strides, padding, dimension_numbers=_NHWC, precision=precision
        ),
        x,
    )
    (dx,) = input_vjp(g)
    kh, kw, c, o = w.shape
    cols = _im2col(x, (kh, kw), strides, padding, g.shape[1:3])  # [M, kh*kw*C]
    dw = lax.dot_general(
        cols,
        g.reshape(-1, o),
        (((0,), (0,)), ((), ())),
        precision=precision,
        preferred_element_type=jnp.float32,
    )  # [kh*kw*C, O], float32 accumulation also for bfloat16 operands
    return dx, dw.reshape(kh, kw, c, o).astype(w.dtype)


_conv_gemm_wgrad.defvjp(_fwd, _bwd)


def conv_gemm_wgrad(
    lhs: jax.Array,
    rhs: jax.Array,
    window_strides: Sequence[int],
    padding: Any,
    lhs_dilation: Sequence[int] | None = None,
    rhs_dilation: Sequence[int] | None = None,
    dimension_numbers: Any = None,
    feature_group_count: int = 1,
    precision: Any = None,
    **kwargs: Any,
) -> jax.Array:
    """`lax.conv_general_dilated` with the im2col + GEMM weight gradient (module docstring).

    The custom gradient covers 2-D NHWC/HWIO convolutions with explicit padding pairs,
    no dilation and feature_group_count 1 (every convolution of jaxreid's ResNets); any other
    call is passed to `lax.conv_general_dilated` unchanged, so the function is a safe
    drop-in.

    Args:
      lhs: [N, H, W, C] input. rhs: [kh, kw, C, O] kernel. window_strides: (sh, sw).
      padding: ((top, bottom), (left, right)).
      Others as `lax.conv_general_dilated`.

    Returns:
      [N, Ho, Wo, O], as `lax.conv_general_dilated`.
    """
    return _custom_or_lax(
        _conv_gemm_wgrad,
        lhs,
        rhs,
        window_strides,
        padding,
        lhs_dilation,
        rhs_dilation,
        dimension_numbers,
        feature_group_count,
        precision,
        kwargs,
    )


def _custom_or_lax(
    custom,
    lhs,
    rhs,
    window_strides,
    padding,
    lhs_dilation,
    rhs_dilation,
    dimension_numbers,
    feature_group_count,
    precision,
    kwargs,
) -> jax.Array:
    """custom(lhs, rhs, strides, padding pairs, precision) with int strides and padding when
    it covers the call (2-D NHWC/HWIO, explicit padding pairs, no dilation, one feature
    group: every convolution of jaxreid's ResNets); `lax.conv_general_dilated` unchanged
    otherwise."""
    supported = (
        _is_nhwc(dimension_numbers)
        and lhs.ndim == 4
        and feature_group_count == 1
        and not kwargs
        and all(d == 1 for d in (lhs_dilation or (1, 1)))
        and all(d == 1 for d in (rhs_dilation or (1, 1)))
        and not isinstance(padding, str)
    )
    if not supported:
        return lax.conv_general_dilated(
            lhs,
            rhs,
            window_strides,
            padding,
            lhs_dilation=lhs_dilation,
            rhs_dilation=rhs_dilation,
            dimension_numbers=dimension_numbers,
            feature_group_count=feature_group_count,
            precision=precision,
            **kwargs,
        )
    padding = tuple((int(lo), int(hi)) for lo, hi in padding)
    return custom(lhs, rhs, tuple(int(s) for s in window_strides), padding, precision)


def conv_gemm(
    lhs: jax.Array,
    rhs: jax.Array,
    window_strides: Sequence[int],
    padding: Any,
    lhs_dilation: Sequence[int] | None = None,
    rhs_dilation: Sequence[int] | None = None,
    dimension_numbers: Any = None,
    feature_group_count: int = 1,
    precision: Any = None,
    **kwargs: Any,
) -> jax.Array:
    """`lax.conv_general_dilated` as im2col + one matrix product (module docstring).

    Calls outside what `conv_gemm_wgrad` covers are passed to `lax.conv_general_dilated`
    unchanged. Args and return as `conv_gemm_wgrad`.
    """
    return _custom_or_lax(
        _conv_gemm,
        lhs,
        rhs,
        window_strides,
        padding,
        lhs_dilation,
        rhs_dilation,
        dimension_numbers,
        feature_group_count,
        precision,
        kwargs,
    )


def _conv_gemm(lhs, rhs, strides, padding, precision):
    kh, kw, c, o = rhs.shape
    n, h, w, _ = lhs.shape
    sh, sw = strides
    ho = (h + sum(padding[0]) - kh) // sh + 1
    wo = (w + sum(padding[1]) - kw) // sw + 1
    patches = _im2col(lhs, (kh, kw), (sh, sw), padding, (ho, wo))  # [N*Ho*Wo, kh*kw*C]
    out = lax.dot_general(
        patches, rhs.reshape(kh * kw * c, o), (((1,), (0,)), ((), ())), precision=precision
    )
    return out.reshape(n, ho, wo, o)


def conv_function(conv_impl: str, train: bool = True) -> Callable[..., jax.Array]:
    """The `conv_general_dilated` of `conv_impl` (one of CONV_IMPLS); 'auto' is 'gemm' when
    `train` on a CPU backend (`jax.default_backend()`), 'xla' otherwise.

    Raises:
      ValueError: unknown `conv_impl` (config.model.conv_impl).
    """
    if conv_impl == "auto":
        conv_impl = "gemm" if train and jax.default_backend() == "cpu" else "xla"
    if conv_impl == "gemm":
        return conv_gemm
    if conv_impl == "xla":
        return lax.conv_general_dilated
    if conv_impl == "gemm_wgrad":
        return conv_gemm_wgrad
    raise ValueError(f"config.model.conv_impl={conv_impl!r}; expected one of {CONV_IMPLS}.")


__all__ = ["CONV_IMPLS", "conv_function", "conv_gemm", "conv_gemm_wgrad"]
