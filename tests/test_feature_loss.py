import pytest
import torch

from modules.losses.feature_loss import FeatureLoss, gram_matrix


@pytest.fixture(scope="module")
def feature_loss():
    return FeatureLoss(weights=None)


def test_zero_for_identical_images_positive_otherwise(feature_loss):
    images = torch.randn(2, 3, 64, 64)
    same = feature_loss(images, images.clone())
    assert all(value.item() == pytest.approx(0.0, abs=1e-7) for value in same.values())
    different = feature_loss(images, images + 0.1 * torch.randn_like(images))
    assert different["loss"] > 0 and different["pixel"] > 0 and different["feat_2"] > 0


def test_reports_each_term_and_total(feature_loss):
    terms = feature_loss(torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64))
    assert set(terms) == {"pixel", "feat_0", "feat_1", "feat_2", "gram_0", "gram_1", "gram_2", "loss"}
    assert terms["loss"] == pytest.approx(sum(v.item() for k, v in terms.items() if k != "loss"), rel=1e-5)


def test_taps_the_activations_before_the_last_three_maxpools(feature_loss):
    # VGG16 features: max-pools at 4, 9, 16, 23, 30; the ReLUs before the last three are 15, 22, 29.
    assert feature_loss.tap_indices == [15, 22, 29]
    shapes = [f.shape for f in feature_loss.features(torch.randn(1, 3, 64, 64))]
    assert shapes == [(1, 256, 16, 16), (1, 512, 8, 8), (1, 512, 4, 4)]


def test_gradient_reaches_the_input_but_not_the_extractor(feature_loss):
    prediction = torch.randn(1, 3, 32, 32, requires_grad=True)
    feature_loss(prediction, torch.randn(1, 3, 32, 32))["loss"].backward()
    assert prediction.grad is not None and prediction.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in feature_loss.extractor.parameters())


def test_stays_in_eval_mode_and_out_of_the_state_dict(feature_loss):
    feature_loss.train()
    assert not feature_loss.extractor.training
    assert feature_loss.state_dict() == {}
    holder = torch.nn.ModuleDict({"loss": feature_loss, "net": torch.nn.Linear(2, 2)})
    state = holder.state_dict()
    assert set(state) == {"net.weight", "net.bias"}
    holder.load_state_dict(state)  # strict: the absent extractor weights are not "missing"


def test_gram_matrix_shape_and_scale():
    features = torch.ones(2, 4, 3, 5)
    gram = gram_matrix(features)
    assert gram.shape == (2, 4, 4)
    # All-ones features: every entry is (H*W) / (C*H*W) = 1 / C.
    assert torch.allclose(gram, torch.full((2, 4, 4), 1 / 4))


def test_local_weights_file_is_loaded(tmp_path):
    source = FeatureLoss(weights=None)
    path = tmp_path / "vgg.pth"
    torch.save({f"features.{k}": v for k, v in source.extractor.state_dict().items()}, path)
    loaded = FeatureLoss(weights=str(path))
    for mine, theirs in zip(loaded.extractor.parameters(), source.extractor.parameters(), strict=True):
        assert torch.equal(mine, theirs)


def test_missing_weights_file_names_the_option(tmp_path):
    from common.errors import UserInputError

    with pytest.raises(UserInputError, match=r"--model.feature_weights: file .*vgg.pth does not exist"):
        FeatureLoss(weights=str(tmp_path / "vgg.pth"))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
def test_gram_and_feature_terms_are_float32_under_autocast(feature_loss, dtype):
    # Bright, contrasty images: activations large enough that a float16 Gram matrix overflows.
    generator = torch.Generator().manual_seed(0)
    prediction, target = (torch.randn(1, 3, 64, 64, generator=generator) * 40 for _ in range(2))
    expected = feature_loss(prediction, target)
    with torch.autocast("cpu", dtype=dtype):
        terms = feature_loss(prediction, target)
    for name, value in terms.items():
        assert value.dtype == torch.float32 and torch.isfinite(value), name
        # The extractor's convs still run in low precision; what follows them does not.
        assert value.item() == pytest.approx(expected[name].item(), rel=0.05), name


def test_the_restoration_module_passes_four_layers_the_gram_scale_and_the_pixel_term_on():
    from modules.nets.unet import UNetSpec
    from modules.restoration import RestorationModule

    tiny = UNetSpec("resnet18")
    model = RestorationModule(tiny, loss="feature", feature_layer_weights=[1.0, 2.0, 3.0, 4.0], feature_gram_scale=0.0,
                              feature_pixel_loss="mse", feature_pixel_weight=3.0)
    assert model.feature_loss.tap_indices == [8, 15, 22, 29]  # the ReLU before the second max-pool too
    images = torch.randn(1, 3, 64, 64)
    terms = model.feature_loss(images, images + 0.1 * torch.randn_like(images))
    assert terms["feat_0"] > 0 and all(terms[f"gram_{i}"] == 0 for i in range(4))
    noisy = images + 0.1 * torch.randn_like(images)
    assert model.feature_loss(images, noisy)["pixel"] == pytest.approx(3.0 * (images - noisy).pow(2).mean().item())
