"""SegmentationModule: configs through the CLI, metrics without Void, freezing, schedule, predict."""

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cli import cli_main
from modules.freezing import set_frozen
from modules.nets.unet import UNetSpec
from modules.one_cycle import Phase, PhasedOneCycle
from modules.segmentation import SegmentationModule
from tests.conftest import CONFIGS
from tests.test_camvid_data import HEIGHT, WIDTH, write_segnet_camvid

CAMVID_CONFIGS = sorted(CONFIGS.glob("camvid_*.yaml"))
MOBILENET = UNetSpec("mobilenet_v2", encoder_cut=-1)
SMALL = ["--data.image_size", "null", "--data.crop_size", "[32, 48]", "--data.batch_size", "2",
         "--data.eval_batch_size", "2"]

pytestmark = pytest.mark.usefixtures("one_thread")



@pytest.fixture(scope="module")
def camvid_dir(tmp_path_factory):
    return write_segnet_camvid(tmp_path_factory.mktemp("data") / "camvid")


@pytest.mark.parametrize("config", CAMVID_CONFIGS, ids=lambda p: p.stem)
def test_camvid_config_fast_dev_run(config, camvid_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # No internet here: every config runs with random encoder weights.
    cli = cli_main(["fit", "--config", str(config), "--data.data_dir", str(camvid_dir),
                    "--model.encoder_weights", "none", "--trainer.fast_dev_run", "2", *SMALL])
    assert cli.trainer.state.finished
    assert (cli.model.hparams.num_classes, cli.model.hparams.ignore_index) == (11, 11)  # linked from the data


def test_fit_logs_metrics_and_grid_then_predict_writes_masks(camvid_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = str(CONFIGS / "camvid_unet.yaml")
    common = ["--config", config, "--data.data_dir", str(camvid_dir), "--model.encoder_weights", "none"]
    cli_main(["fit", *common, *SMALL, "--trainer.max_epochs", "2", "--model.schedule.frozen_epochs", "1",
              "--trainer.check_val_every_n_epoch", "1", "--trainer.log_every_n_steps", "1"])
    run = tmp_path / "lightning_logs" / "camvid_unet" / "version_0"
    events = EventAccumulator(str(run), size_guidance={"images": 0}).Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss", "val/loss", "val/acc", "val/miou", "val/iou/Pole", "val/iou/Bicyclist"} <= scalars
    assert "val/iou/Void" not in scalars
    assert "val/image_truth_prediction" in events.Tags()["images"]

    checkpoint = tmp_path / "lightning_logs" / "camvid_unet" / "checkpoints" / "last.ckpt"
    model = SegmentationModule.load_from_checkpoint(checkpoint).eval()  # no config needed
    assert model.hparams.net["encoder"] == "mobilenet_v2"

    cli_main(["predict", *common, "--data.predict_dir", str(camvid_dir / "val"), "--ckpt_path", str(checkpoint),
              "--data.image_size", "[24, 32]"])
    written = sorted((tmp_path / "predictions" / "camvid_unet").glob("*.png"))
    assert [p.name for p in written] == ["val_000.png", "val_001.png", "val_002.png"]
    with Image.open(written[0]) as mask:
        assert mask.mode == "P" and mask.size == (WIDTH, HEIGHT)  # back at the image's own size
        assert np.asarray(mask).max() < 11 and mask.getpalette()[3:6] == [128, 0, 0]  # Building's colour


def test_metrics_exclude_void():
    model = SegmentationModule(MOBILENET, num_classes=3, ignore_index=3)
    logged = {}
    model.log = lambda name, value, **_: logged.__setitem__(name, float(value))
    model.hparams.class_names = ["a", "b", "c"]
    truth = torch.tensor([[0, 0, 1, 1, 3, 3]])
    predicted = torch.tensor([[0, 1, 1, 1, 2, 0]])  # the two Void pixels must not count
    model.val_confusion.update(predicted, truth)
    model._log_metrics("val", model.val_confusion)
    assert logged["val/acc"] == pytest.approx(3 / 4)
    assert logged["val/iou/a"] == pytest.approx(1 / 2) and logged["val/iou/b"] == pytest.approx(2 / 3)
    assert logged["val/miou"] == pytest.approx((1 / 2 + 2 / 3) / 2)  # class c: in neither truth nor prediction


def test_frozen_encoder_keeps_norm_layers_training():
    model = SegmentationModule(UNetSpec("resnet18"), num_classes=3)
    set_frozen(model.net.encoder, frozen=True)
    trainable = {id(p) for p in model.net.encoder.parameters() if p.requires_grad}
    norms = {id(p) for m in model.net.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d) for p in m.parameters()}
    assert trainable == norms and len(norms) < len(list(model.net.encoder.parameters()))
    set_frozen(model.net.encoder, frozen=False)
    assert all(p.requires_grad for p in model.parameters())


def test_phased_one_cycle_runs_two_cycles_with_discriminative_rates():
    params = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    optimizer = torch.optim.AdamW([{"params": params[:1]}, {"params": params[1:]}], betas=(0.95, 0.99))
    scheduler = PhasedOneCycle(optimizer, [Phase(10, (1.0, 1.0), 0.5), Phase(20, (0.01, 0.1), 0.25)])
    rates = []
    for _ in range(30):
        rates.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    # Each phase peaks where torch's OneCycleLR would (step pct_start * steps - 1) and ends at peak / 25e4.
    assert rates[0] == pytest.approx([1 / 25, 1 / 25]) and rates[4] == pytest.approx([1.0, 1.0])
    assert rates[9] == pytest.approx([1 / 25e4, 1 / 25e4])
    assert rates[10] == pytest.approx([0.01 / 25, 0.1 / 25]) and rates[14] == pytest.approx([0.01, 0.1])
    assert rates[29] == pytest.approx([0.01 / 25e4, 0.1 / 25e4])
    assert optimizer.param_groups[0]["betas"][0] == pytest.approx(0.95, abs=0.01)


def test_training_lowers_the_loss_on_a_tiny_batch():
    torch.manual_seed(0)
    model = SegmentationModule(MOBILENET, num_classes=4, ignore_index=4)
    images = torch.randn(2, 3, 32, 48)
    masks = (images[:, 0] > 0).long() + 2 * (images[:, 1] > 0).long()  # (2, 32, 48) in 0..3
    masks[:, :, :4] = 4  # Void
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss = torch.nn.functional.cross_entropy(model(images), masks, ignore_index=4)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
