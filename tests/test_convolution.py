"""conv_impl 'gemm' and 'gemm_wgrad' equal lax.conv_general_dilated and NumPy loops: values
and both gradients; 'auto' picks 'gemm' for training on a CPU and 'xla' otherwise."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxreid.models import BasicBlock, ReIDNet, ResNet
from jaxreid.models.convolution import conv_function, conv_gemm, conv_gemm_wgrad

NHWC = ("NHWC", "HWIO", "NHWC")

# (kernel, stride, padding, input [N, H, W, C], output channels): the convolutions of
# torchvision's ResNets (7x7/2 stem, 3x3/1 and /2, 1x1/1 and /2 shortcuts) on odd sizes, so
# that strided windows do not tile the input exactly.
CASES = [
    (3, 1, 1, (2, 7, 5, 3), 4),
    (3, 2, 1, (2, 9, 6, 3), 5),
    (1, 1, 0, (3, 5, 4, 6), 2),
    (1, 2, 0, (2, 7, 5, 4), 3),
    (7, 2, 3, (2, 11, 8, 3), 4),
]


def _numpy_weight_grad(x, g, kernel, stride, padding):
    """dW[i, j, c, o] = sum_{n,p,q} xpad[n, s p + i, s q + j, c] g[n, p, q, o], in float64
    loops over the kernel taps (the definition, independent of the code under test)."""
    xpad = np.pad(x.astype(np.float64), ((0, 0), (padding,) * 2, (padding,) * 2, (0, 0)))
    _, ho, wo, _ = g.shape
    dw = np.zeros((kernel, kernel, x.shape[-1], g.shape[-1]))
    for i in range(kernel):
        for j in range(kernel):
            window = xpad[
                :, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride
            ]
            dw[i, j] = np.einsum("npqc,npqo->co", window, g.astype(np.float64))
    return dw


def _numpy_conv(x, w, stride, padding):
    """y[n, p, q, o] = sum_{i,j,c} xpad[n, s p + i, s q + j, c] w[i, j, c, o], float64."""
    kernel = w.shape[0]
    xpad = np.pad(x.astype(np.float64), ((0, 0), (padding,) * 2, (padding,) * 2, (0, 0)))
    ho = (xpad.shape[1] - kernel) // stride + 1
    wo = (xpad.shape[2] - kernel) // stride + 1
    y = np.zeros((x.shape[0], ho, wo, w.shape[-1]))
    for i in range(kernel):
        for j in range(kernel):
            window = xpad[
                :, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride
            ]
            y += np.einsum("npqc,co->npqo", window, w[i, j].astype(np.float64))
    return y


def _numpy_input_grad(g, w, x_shape, stride, padding):
    """dx = the transpose of _numpy_conv in x: each output gradient spread back over its
    window, float64 loops over the taps."""
    kernel = w.shape[0]
    n, h, wd, c = x_shape
    dxpad = np.zeros((n, h + 2 * padding, wd + 2 * padding, c))
    _, ho, wo, _ = g.shape
    for i in range(kernel):
        for j in range(kernel):
            dxpad[
                :, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride
            ] += np.einsum("npqo,co->npqc", g.astype(np.float64), w[i, j].astype(np.float64))
    return dxpad[:, padding : padding + h, padding : padding + wd]


@pytest.mark.parametrize("kernel, stride, padding, shape, out", CASES)
def test_gemm_matches_lax_and_numpy(kernel, stride, padding, shape, out):
    rng = np.random.default_rng(kernel * 10 + stride)
    x = rng.normal(size=shape).astype(np.float32)
    w = rng.normal(size=(kernel, kernel, shape[-1], out)).astype(np.float32)
    pads = ((padding, padding), (padding, padding))
    conv = functools.partial(
        conv_gemm, window_strides=(stride, stride), padding=pads, dimension_numbers=NHWC
    )
    y, vjp = jax.jit(lambda x, w: jax.vjp(conv, x, w))(x, w)
    g = rng.normal(size=y.shape).astype(np.float32)
    dx, dw = vjp(g)
    # Each entry sums <= 7*7*3 = 147 products of unit-scale terms, in another order than
    # the float64 loops: float32 rounding ~sqrt(147) * 2^-24 * sum|terms| << 1e-4.
    np.testing.assert_allclose(y, _numpy_conv(x, w, stride, padding), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(
        dx, _numpy_input_grad(g, w, shape, stride, padding), rtol=1e-5, atol=1e-4
    )
    np.testing.assert_allclose(
        dw, _numpy_weight_grad(x, g, kernel, stride, padding), rtol=1e-5, atol=1e-4
    )
    # And XLA's own convolution, the same bound.
    y_ref, vjp_ref = jax.vjp(
        functools.partial(
            lax.conv_general_dilated,
            window_strides=(stride, stride),
            padding=pads,
            dimension_numbers=NHWC,
        ),
        x,
        w,
    )
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-4)
    for got, want in zip((dx, dw), vjp_ref(g)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("kernel, stride, padding, shape, out", CASES)
def test_gemm_wgrad_matches_lax_and_numpy(kernel, stride, padding, shape, out):
    rng = np.random.default_rng(kernel * 10 + stride)
    x = rng.normal(size=shape).astype(np.float32)
    w = rng.normal(size=(kernel, kernel, shape[-1], out)).astype(np.float32)
    pads = ((padding, padding), (padding, padding))
    reference = functools.partial(
        lax.conv_general_dilated,
        window_strides=(stride, stride),
        padding=pads,
        dimension_numbers=NHWC,
    )
    custom = functools.partial(
        conv_gemm_wgrad, window_strides=(stride, stride), padding=pads, dimension_numbers=NHWC
    )
    y_ref, vjp_ref = jax.vjp(reference, x, w)
    y, vjp = jax.jit(lambda x, w: jax.vjp(custom, x, w))(x, w)
    g = rng.normal(size=y_ref.shape).astype(np.float32)
    dx_ref, dw_ref = vjp_ref(g)
    dx, dw = vjp(g)
    # Forward and input gradient are the same XLA convolutions: equal up to float32
    # rounding. The weight gradient sums the same N*Ho*Wo products per entry (<= 144 here)
    # in another order: the float32 reduction-order difference is ~sqrt(K) * 2^-24 relative
    # to the sum of |terms|, well below 1e-5 of the entries' scale (|terms| ~ 1).
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dw, dw_ref, rtol=1e-5, atol=1e-4)
    # The float64-free NumPy loop: the same reduction-order bound as above (atol 1e-4).
    np.testing.assert_allclose(
        dw, _numpy_weight_grad(x, g, kernel, stride, padding), rtol=1e-5, atol=1e-4
    )
    assert dw.dtype == jnp.float32 and dw.shape == w.shape


def test_gemm_wgrad_bfloat16_accumulates_in_float32():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(4, 8, 6, 8)), jnp.bfloat16)
    w = jnp.asarray(rng.normal(size=(3, 3, 8, 4)), jnp.bfloat16)
    conv = functools.partial(
        conv_gemm_wgrad, window_strides=(1, 1), padding=((1, 1), (1, 1)), dimension_numbers=NHWC
    )
    y, vjp = jax.vjp(conv, x, w)
    g = jnp.ones_like(y)
    _, dw = vjp(g)
    assert dw.dtype == jnp.bfloat16
    expected = _numpy_weight_grad(np.asarray(x, np.float32), np.asarray(g, np.float32), 3, 1, 1)
    # One bf16 rounding of a float32-accumulated sum: relative error <= 2^-8.
    np.testing.assert_allclose(np.asarray(dw, np.float32), expected, rtol=2**-8, atol=1e-2)


def test_unsupported_calls_fall_back_to_lax():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 6, 6, 4)).astype(np.float32)
    w = rng.normal(size=(3, 3, 2, 4)).astype(np.float32)
    kwargs = dict(
        window_strides=(1, 1), padding="SAME", dimension_numbers=NHWC, feature_group_count=2
    )
    grads = lambda conv: jax.grad(lambda x, w: jnp.sum(conv(x, w, **kwargs) ** 2), (0, 1))(x, w)
    for conv in (conv_gemm, conv_gemm_wgrad):
        for got, want in zip(grads(conv), grads(lax.conv_general_dilated)):
            np.testing.assert_array_equal(got, want)


def test_conv_function_names():
    assert conv_function("xla") is lax.conv_general_dilated
    assert conv_function("gemm") is conv_gemm
    assert conv_function("gemm_wgrad") is conv_gemm_wgrad
    # 'auto': the im2col GEMMs only for training on a CPU (the test machines' backend);
    # inference and export keep XLA's convolution ops.
    assert jax.default_backend() == "cpu"
    assert conv_function("auto", train=True) is conv_gemm
    assert conv_function("auto", train=False) is lax.conv_general_dilated
    with pytest.raises(ValueError, match="config.model.conv_impl='im2col'"):
        conv_function("im2col")


@pytest.mark.parametrize("conv_impl", ["gemm", "gemm_wgrad", "auto"])
def test_resnet_gradients_equal_with_any_conv_impl(conv_impl):
    images = jnp.asarray(np.random.default_rng(0).normal(size=(4, 32, 16, 3)), jnp.float32)

    def grads(conv_impl):
        # Stem (7x7/2) + two BasicBlocks: 3x3/1, 3x3/2 and the 1x1/2 shortcut, as ResNet18.
        backbone = functools.partial(
            ResNet, stage_sizes=(1, 1), block_cls=BasicBlock, num_filters=4, conv_impl=conv_impl
        )
        model = ReIDNet(backbone=backbone, num_classes=2, embedding_size=8, dropout_rate=0.0)
        variables = model.init(jax.random.key(0), images, train=False)

        def loss(params):
            (embedding, inter), _ = model.apply(
                {**variables, "params": params}, images, train=True, mutable=["batch_stats"]
            )
            return jnp.sum(inter["logits"] ** 2) + jnp.sum(embedding**2)

        return jax.grad(loss)(variables["params"])

    xla, gemm = grads("xla"), grads(conv_impl)
    flat = lambda t: np.concatenate([np.ravel(leaf) for leaf in jax.tree.leaves(t)])
    # Reduction-order differences of each weight gradient, propagated through the network's
    # BatchNorms: relative to the gradient's overall scale, float32 rounding level ~1e-6.
    scale = np.max(np.abs(flat(xla)))
    np.testing.assert_allclose(flat(gemm), flat(xla), rtol=1e-4, atol=1e-5 * scale)
