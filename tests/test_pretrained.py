"""torchvision-layout PyTorch ResNet -> jaxreid ResNet conversion gives the same features.

torchvision is not installed, so the reference network below is written here with
torchvision's module names (conv1, bn1, layer1.0.conv1, layer1.0.downsample.0/.1, fc).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from jaxreid.models import BACKBONES, create_model  # noqa: E402
from jaxreid.models.pretrained import load_torchvision_resnet, merge_into  # noqa: E402


class TorchBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class TorchBottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class TorchResNet(nn.Module):
    def __init__(self, block, layers, in_channels=3, num_classes=1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, 64, layers[0], 1)
        self.layer2 = self._make_layer(block, 128, layers[1], 2)
        self.layer3 = self._make_layer(block, 256, layers[2], 2)
        self.layer4 = self._make_layer(block, 512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def features(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


TORCH_ARCHS = {
    "resnet18": (TorchBasicBlock, (2, 2, 2, 2)),
    "resnet50": (TorchBottleneck, (3, 4, 6, 3)),
}


def _random_torch_resnet(arch, seed):
    torch.manual_seed(seed)
    block, layers = TORCH_ARCHS[arch]
    model = TorchResNet(block, layers)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                # Non-trivial running statistics and affine parameters, so a swapped
                # mean/var or scale/bias would show.
                module.running_mean.normal_(0.0, 0.2)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.2)
    return model.eval()


def _jax_pooled(arch, variables, x_nchw):
    x = jnp.asarray(np.transpose(x_nchw, (0, 2, 3, 1)))
    pooled, _ = BACKBONES[arch]().apply(variables, x, train=False)
    return np.asarray(pooled)


@pytest.fixture(scope="module", params=sorted(TORCH_ARCHS))
def saved_resnet(request, tmp_path_factory):
    arch = request.param
    model = _random_torch_resnet(arch, seed=0)
    path = tmp_path_factory.mktemp(arch) / f"{arch}.pth"
    torch.save(model.state_dict(), path)
    return arch, model, path


def test_converted_resnet_matches_torch(saved_resnet):
    arch, model, path = saved_resnet
    variables = load_torchvision_resnet(str(path), arch)
    x = np.random.default_rng(0).normal(size=(2, 3, 64, 32)).astype(np.float32)
    with torch.no_grad():
        want = model.features(torch.from_numpy(x)).numpy()
    got = _jax_pooled(arch, variables, x)
    assert got.shape == want.shape == (2, 512 * TORCH_ARCHS[arch][0].expansion)
    assert np.abs(want).max() > 0.1  # not trivially zero
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


def test_one_channel_adaptation_matches_summed_torch_kernel(saved_resnet):
    arch, model, path = saved_resnet
    variables = load_torchvision_resnet(str(path), arch, in_channels=1)
    assert variables["params"]["conv1"]["kernel"].shape == (7, 7, 1, 64)

    block, layers = TORCH_ARCHS[arch]
    gray_model = TorchResNet(block, layers, in_channels=1)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["conv1.weight"] = state["conv1.weight"].sum(dim=1, keepdim=True)
    gray_model.load_state_dict(state)
    gray_model.eval()

    x = np.random.default_rng(1).normal(size=(2, 1, 64, 32)).astype(np.float32)
    with torch.no_grad():
        want = gray_model.features(torch.from_numpy(x)).numpy()
        # Summing the RGB kernels == feeding the gray image to all three channels.
        replicated = model.features(torch.from_numpy(np.repeat(x, 3, axis=1))).numpy()
    np.testing.assert_allclose(want, replicated, atol=1e-4)
    np.testing.assert_allclose(_jax_pooled(arch, variables, x), want, atol=1e-4, rtol=0)


def test_channel_map_and_npz_and_safetensors(tmp_path):
    model = _random_torch_resnet("resnet18", seed=1)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    npz_path = tmp_path / "resnet18.npz"
    np.savez(npz_path, **state)
    rgb_kernel = state["conv1.weight"]  # [64, 3, 7, 7]

    variables = load_torchvision_resnet(
        str(npz_path), "resnet18", in_channels=2, channel_map=(2, "gray")
    )
    kernel = variables["params"]["conv1"]["kernel"]  # [7, 7, 2, 64]
    np.testing.assert_array_equal(kernel[:, :, 0, :], rgb_kernel[:, 2].transpose(1, 2, 0))
    np.testing.assert_allclose(
        kernel[:, :, 1, :], rgb_kernel.sum(axis=1).transpose(1, 2, 0), rtol=1e-6
    )
    # Default 2-channel layout (Wu et al. 2017 zero-padding): both channels gray.
    default2 = load_torchvision_resnet(str(npz_path), "resnet18", in_channels=2)
    np.testing.assert_array_equal(
        default2["params"]["conv1"]["kernel"][:, :, 0],
        default2["params"]["conv1"]["kernel"][:, :, 1],
    )
    # Other leaves: layout transposes and BN renames.
    block = variables["params"]["layer2_0"]
    np.testing.assert_array_equal(
        block["downsample_conv"]["kernel"],
        state["layer2.0.downsample.0.weight"].transpose(2, 3, 1, 0),
    )
    np.testing.assert_array_equal(
        block["downsample_bn"]["scale"], state["layer2.0.downsample.1.weight"]
    )
    np.testing.assert_array_equal(
        variables["batch_stats"]["layer4_1"]["bn2"]["var"], state["layer4.1.bn2.running_var"]
    )
    assert "fc" not in variables["params"]

    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    st_path = tmp_path / "resnet18.safetensors"
    safetensors_numpy.save_file(
        {k: np.ascontiguousarray(v) for k, v in state.items()}, str(st_path)
    )
    from_st = load_torchvision_resnet(str(st_path), "resnet18")
    from_npz = load_torchvision_resnet(str(npz_path), "resnet18")
    jax.tree.map(np.testing.assert_array_equal, from_st, from_npz)

    with pytest.raises(ValueError, match="channel_map"):
        load_torchvision_resnet(str(npz_path), "resnet18", in_channels=4)


def test_wrong_arch_names_the_keys(saved_resnet):
    arch, _, path = saved_resnet
    other = "resnet50" if arch == "resnet18" else "resnet18"
    with pytest.raises(ValueError) as info:
        load_torchvision_resnet(str(path), other)
    message = str(info.value)
    assert f"{path} does not match torchvision {other}: " in message
    if other == "resnet50":
        assert "missing keys: [" in message and "layer1.0.conv3.weight" in message
    else:
        assert "unexpected keys: [" in message and "layer1.2.conv1.weight" in message
        assert " | shape mismatches: " in message
        # layer1.0.conv1 exists in both but is 1x1 (64->64) vs 3x3: shapes named.
        assert "layer1.0.conv1.weight: file (64, 64, 1, 1) vs resnet18 (64, 64, 3, 3)" in message
    with pytest.raises(ValueError, match="resnet18, resnet34, resnet50"):
        load_torchvision_resnet(str(path), "resnet152")


def test_merge_into_reid_model_and_shape_mismatch(tmp_path):
    model = _random_torch_resnet("resnet18", seed=2)
    path = tmp_path / "resnet18.pth"
    torch.save({"state_dict": {f"base.{k}": v for k, v in model.state_dict().items()}}, path)
    pretrained = load_torchvision_resnet(str(path), "resnet18", in_channels=1, key_prefix="base.")

    reid = create_model("resnet18", num_classes=3, embedding_size=8)
    shapes = jax.eval_shape(
        lambda: reid.init(jax.random.key(0), jnp.zeros((1, 64, 32, 1)), train=False)
    )
    variables = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    merged = merge_into(variables, pretrained)
    np.testing.assert_array_equal(
        merged["params"]["backbone"]["layer3_1"]["conv2"]["kernel"],
        model.state_dict()["layer3.1.conv2.weight"].numpy().transpose(2, 3, 1, 0),
    )
    np.testing.assert_array_equal(
        merged["batch_stats"]["backbone"]["bn1"]["mean"],
        model.state_dict()["bn1.running_mean"].numpy(),
    )
    assert merged["params"]["classifier"] is variables["params"]["classifier"]
    assert float(jnp.abs(variables["params"]["backbone"]["bn1"]["scale"]).sum()) == 0.0

    # 3-channel model vs 1-channel weights, and a reduced-width model: key and both shapes.
    rgb_model = create_model("resnet18", num_classes=3, embedding_size=8)
    rgb_shapes = jax.eval_shape(
        lambda: rgb_model.init(jax.random.key(0), jnp.zeros((1, 64, 32, 3)), train=False)
    )
    with pytest.raises(
        ValueError,
        match=r"params/backbone/conv1/kernel: pretrained "
        r"\(7, 7, 1, 64\) vs model \(7, 7, 3, 64\)",
    ):
        merge_into(rgb_shapes, pretrained)
    # Wrong prefix: nothing to replace.
    with pytest.raises(ValueError, match="missing from pretrained"):
        merge_into(variables, {"params": pretrained["params"]}, prefix=())
