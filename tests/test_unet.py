"""The U-Net on every listed torchvision encoder: shapes, gradients, architecture, hooks, weights."""

import copy
import pickle

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from common.errors import UserInputError
from modules.nets.encoders import build_encoder
from modules.nets.unet import UNet, UNetSpec
from modules.nets.unet_blocks import icnr_
from tests.conftest import SHARED


def unet(encoder: str = "resnet34", num_classes: int = 12, **options) -> UNet:
    """A U-Net on a randomly initialised torchvision encoder, from its spec."""
    return UNetSpec(encoder=encoder, **options).build(3, num_classes)

ENCODERS = {  # name: cut
    "resnet18": None, "resnet34": None, "resnet50": None, "mobilenet_v2": -1, "vgg16": None,
}

pytestmark = pytest.mark.usefixtures("one_thread")



@pytest.mark.parametrize("encoder", ENCODERS)
def test_output_has_the_input_size(encoder):
    # On the meta device shapes propagate without arithmetic: a 360x480 pass through the ResNet-50
    # U-Net (whose full-size res_block has 291 channels) would otherwise take half a minute here.
    with torch.device("meta"):
        net = unet(encoder, num_classes=5, encoder_cut=ENCODERS[encoder]).eval()
        for height, width in ((360, 480), (97, 131), (64, 64)):
            assert net(torch.randn(1, 3, height, width)).shape == (1, 5, height, width), (height, width)
    assert not any(module._forward_hooks for module in net.modules())  # the sizing hooks are gone


@pytest.mark.parametrize("encoder", ["resnet18", "resnet34", "mobilenet_v2", "vgg16"])
def test_odd_sizes_compute_finite_outputs(encoder):
    net = unet(encoder, num_classes=5, encoder_cut=ENCODERS[encoder]).eval()
    sizes = ((360, 480), (97, 131)) if encoder == "mobilenet_v2" else ((97, 131),)
    with torch.no_grad():
        for height, width in sizes:
            out = net(torch.randn(1, 3, height, width))
            assert out.shape == (1, 5, height, width) and torch.isfinite(out).all()


@pytest.mark.parametrize("options", [
    {"encoder": "mobilenet_v2", "encoder_cut": -1, "norm": "batch", "blur": True, "self_attention": True},
    {"encoder": "resnet18", "norm": "weight", "y_range": (-3.0, 3.0)},
], ids=["mobilenet-batch-blur-attention", "resnet18-weightnorm-yrange"])
def test_every_parameter_gets_a_gradient(options):
    net = unet(num_classes=4, **options).train()
    for module in net.modules():  # open the paths that start closed by design
        if isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
        if hasattr(module, "gamma"):
            nn.init.constant_(module.gamma, 0.5)
    out = net(torch.randn(2, 3, 64, 96))
    F.mse_loss(out, torch.randn_like(out)).backward()
    for name, parameter in net.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    if "y_range" in options:
        assert out.min() >= -3 and out.max() <= 3


@pytest.mark.parametrize("y_range", [None, (-3.0, 3.0)], ids=["no-range", "y-range"])
def test_residual_unet_starts_as_the_identity_and_learns_a_correction(y_range):
    torch.manual_seed(0)
    net = unet("resnet18", num_classes=3, norm="weight", y_range=y_range, residual=True).train()
    images = torch.randn(2, 3, 64, 64).clamp(-2.5, 2.5)
    torch.testing.assert_close(net(images), images, atol=1e-3, rtol=0)  # the head starts at zero
    F.mse_loss(net(images), images.flip(-1)).backward()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    optimizer.step()
    assert (net(images) - images).abs().max() > 1e-3  # the zeroed head still learns
    with pytest.raises(ValueError, match="residual"):
        unet("resnet18", num_classes=5, residual=True)


def test_pretrained_encoder_weights_fill_a_built_unet_without_moving_the_random_state(tmp_path):
    source = torchvision.models.mobilenet_v2()
    path = tmp_path / "features.pth"
    torch.save({k: v for k, v in source.state_dict().items() if k.startswith("features.")}, path)
    spec = UNetSpec(encoder="mobilenet_v2", encoder_cut=-1)
    net = spec.build(3, 3).to(memory_format=torch.channels_last)
    decoder_before = {k: v.clone() for k, v in net.state_dict().items() if not k.startswith("encoder.")}
    state = torch.get_rng_state()
    spec.load_encoder_weights(net, str(path))
    assert torch.equal(torch.get_rng_state(), state)  # a seeded run draws the same numbers after loading
    assert torch.equal(net.encoder[3].conv[0][0].weight, source.features[3].conv[0][0].weight)
    assert net.encoder[3].conv[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in decoder_before.items())


def test_resnet34_matches_the_lessons_unet():
    net = unet("resnet34", num_classes=12)
    assert net.skip_indices == [2, 4, 5, 6]  # relu (1/2), layer1 (1/4), layer2 (1/8), layer3 (1/16)
    assert [block.out_channels for block in net.blocks] == [512, 384, 256, 96]
    assert [block.upsample.layers[0].in_channels for block in net.blocks] == [512, 512, 384, 256]
    assert net.middle[2][0].in_channels == 512 and net.middle[2][0].out_channels == 1024
    assert isinstance(net.final_upsample.layers[0], nn.Conv2d) and net.final_upsample.layers[0].out_channels == 384
    assert net.cross.body[0][0].in_channels == 99  # 96 decoder channels + the 3 image channels
    assert net.head[0].in_channels == 99 and net.head[0].out_channels == 12
    # The lesson's decoder (norm "none"): conv + ReLU, batch norm only on the skips and the middle.
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules() if m not in set(net.encoder.modules())) == 5


def test_icnr_makes_pixel_shuffle_start_as_nearest_upsampling():
    conv = nn.Conv2d(3, 8, 1, bias=False)
    icnr_(conv.weight)
    x = torch.randn(1, 3, 5, 5)
    shuffled = nn.PixelShuffle(2)(conv(x))  # (1, 2, 10, 10)
    assert torch.allclose(shuffled, F.interpolate(shuffled[:, :, ::2, ::2], scale_factor=2, mode="nearest"))


def test_pickles_deep_copies_and_reloads():
    net = unet("mobilenet_v2", num_classes=3, encoder_cut=-1).eval()
    x = torch.randn(1, 3, 64, 80)
    with torch.no_grad():
        expected = net(x)
        for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
            assert torch.equal(clone(x), expected)
        fresh = unet("mobilenet_v2", num_classes=3, encoder_cut=-1).eval()
        fresh.load_state_dict(net.state_dict())
        assert torch.equal(fresh(x), expected)


def test_vgg_skips_start_at_full_size_and_other_channel_counts_work():
    net = UNet(build_encoder("vgg16", in_channels=1), num_classes=2, in_channels=1).eval()
    assert isinstance(net.final_upsample, nn.Identity)  # its first skip is already full size
    with torch.no_grad():
        assert net(torch.randn(1, 1, 40, 56)).shape == (1, 2, 40, 56)


def test_local_weights_load_and_bad_files_are_named(tmp_path):
    source = torchvision.models.mobilenet_v2()
    good = tmp_path / "features.pth"
    torch.save({k: v for k, v in source.state_dict().items() if k.startswith("features.")}, good)
    encoder = build_encoder("mobilenet_v2", str(good), cut=-1)
    assert torch.equal(encoder[3].conv[0][0].weight, source.features[3].conv[0][0].weight)

    wrong_net = tmp_path / "resnet.pth"
    torch.save(torchvision.models.resnet18().state_dict(), wrong_net)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    for path in (wrong_net, garbage, tmp_path / "absent.pth"):
        with pytest.raises(UserInputError, match=path.name):
            build_encoder("mobilenet_v2", str(path), cut=-1)
    with pytest.raises(UserInputError, match="not a torchvision"):
        build_encoder("resnet35")


@pytest.mark.skipif(not (SHARED / "weights" / "mobilenet_v2_imagenet_features.pth").is_file(),
                    reason="no local MobileNetV2 weights")
def test_real_mobilenet_weights_fit_the_cut_encoder():
    path = SHARED / "weights" / "mobilenet_v2_imagenet_features.pth"
    encoder = build_encoder("mobilenet_v2", str(path), cut=-1)
    state = torch.load(path, weights_only=True)
    assert torch.equal(encoder[0][0].weight, state["features.0.0.weight"])
