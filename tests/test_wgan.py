from types import SimpleNamespace

import torch

from cli import cli_main
from modules.nets.dcgan import DCGANSpec, dcgan_critic, dcgan_generator
from modules.switchers import FixedSwitcher
from modules.wgan import WGANModule
from tests.conftest import CONFIGS


def test_dcgan_shapes():
    assert dcgan_generator(32, 3, 16, 8)(torch.randn(2, 16, 1, 1)).shape == (2, 3, 32, 32)
    assert dcgan_critic(32, 3, 8)(torch.randn(2, 3, 32, 32)).shape == (2,)


def test_both_optimizers_change_their_network_and_clip_holds():
    model = WGANModule(DCGANSpec(noise_dim=8, width=4), image_size=16, switcher=FixedSwitcher(1), grid_size=0)
    optimizers = model.configure_optimizers()
    model.optimizers = lambda: optimizers
    model._trainer = SimpleNamespace(optimizers=optimizers, world_size=1)  # what the training step reads
    model.manual_backward = lambda loss: loss.backward()
    model.log = lambda *args, **kwargs: None
    real = torch.rand(4, 3, 16, 16) * 2 - 1
    critic_before = [p.detach().clone() for p in model.critic.parameters()]
    generator_before = [p.detach().clone() for p in model.generator.parameters()]

    model.training_step(real, 0)  # critic turn
    assert any(not torch.equal(a, b) for a, b in zip(critic_before, model.critic.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(generator_before, model.generator.parameters(), strict=True))
    assert all(p.abs().max() <= 0.01 for p in model.critic.parameters())

    critic_before = [p.detach().clone() for p in model.critic.parameters()]
    model.critic.zero_grad(set_to_none=True)
    model.training_step(real, 1)  # generator turn
    assert any(not torch.equal(a, b) for a, b in zip(generator_before, model.generator.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(critic_before, model.critic.parameters(), strict=True))
    assert all(p.grad is None and p.requires_grad for p in model.critic.parameters())  # judged, not trained


def test_wgan_config_fast_dev_run(photos, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = cli_main(["fit", "--config", str(CONFIGS / "wgan.yaml"), "--data.data_dir", str(photos),
                    "--data.batch_size", "4", "--data.num_workers", "0", "--trainer.fast_dev_run", "2"])
    assert cli.trainer.state.finished
    assert isinstance(cli.model.switcher, FixedSwitcher) and cli.model.switcher.critic_steps == 5
