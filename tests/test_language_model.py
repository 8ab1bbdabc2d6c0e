import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F

from cli import cli_main
from datamodules.human_numbers import HumanNumbersDataModule
from modules.language_model import LanguageModelModule
from modules.nets.rnn import LANGUAGE_MODELS, LanguageNetSpec
from modules.one_cycle import OneCycle
from tests.conftest import CONFIGS

VOCAB = 31


@pytest.mark.parametrize("arch", sorted(LANGUAGE_MODELS))
def test_shapes_and_state(arch):
    net = LANGUAGE_MODELS[arch](VOCAB, 16)
    tokens = torch.randint(0, VOCAB, (4, 7))
    logits, hidden = net(tokens, None)
    if arch == "model1":
        assert logits.shape == (4, VOCAB) and hidden is None
    else:
        assert logits.shape == (4, 7, VOCAB)
    if arch in ("model3", "model4", "model5"):
        assert hidden is not None and hidden.shape[-2] == 4
        again, _ = net(tokens, hidden)
        assert not torch.allclose(again, logits)  # the carried state changes the predictions


def _module(arch="model5", **kwargs):
    datamodule = HumanNumbersDataModule(batch_size=8, bptt=6)
    net = LanguageNetSpec(arch, hidden_dim=16, num_layers=2)
    return LanguageModelModule(net, vocab_size=datamodule.vocab_size, vocab=datamodule.vocab, **kwargs), datamodule


def test_state_is_detached_between_batches_and_reset_per_epoch():
    model, datamodule = _module()
    model.trainer = None
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = iter(datamodule.train_dataloader())
    model.on_train_epoch_start()
    for _ in range(3):  # a second backward through a kept graph would raise here
        logits, targets = model._run(next(batches), "train")
        loss = F.cross_entropy(logits.flatten(0, -2), targets.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert model.hidden["train"] is not None and not model.hidden["train"].requires_grad
    model.on_train_epoch_start()
    assert model.hidden["train"] is None
    # A batch with fewer rows (a short final batch) starts from a fresh state instead of failing.
    logits, _ = model._run({"tokens": torch.zeros(3, 6, dtype=torch.long),
                            "targets": torch.zeros(3, 6, dtype=torch.long)}, "train")
    assert logits.shape[0] == 3


def test_validation_state_is_separate_from_training_state():
    model, datamodule = _module()
    batch = next(iter(datamodule.train_dataloader()))
    model._run(batch, "train")
    kept = model.hidden["train"].clone()
    model.on_validation_epoch_start()
    model._run(next(iter(datamodule.val_dataloader())), "val")
    assert torch.equal(model.hidden["train"], kept)


def test_overfits_a_tiny_stream(tmp_path):
    model, datamodule = _module(schedule=OneCycle(lr=3e-2, weight_decay=0.0))
    datamodule.train_tokens = datamodule.train_tokens[:200]
    datamodule.val_tokens = datamodule.train_tokens
    trainer = pl.Trainer(max_epochs=40, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, datamodule=datamodule)
    assert trainer.callback_metrics["val/acc"] > 0.9


def test_generate_reads_as_numbers():
    model, datamodule = _module()
    words = model.decode(model.generate(model.encode("eight thousand one"), 12)).split()
    assert len(words) == 12 and set(words) <= set(datamodule.vocab)


HUMAN_NUMBERS_CONFIGS = sorted(CONFIGS.glob("human_numbers*.yaml"))


@pytest.mark.parametrize("config", HUMAN_NUMBERS_CONFIGS, ids=lambda p: p.stem)
def test_config_fast_dev_run(config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = cli_main(["fit", "--config", str(config), "--trainer.fast_dev_run", "2"])
    assert cli.trainer.state.finished
    assert cli.model.hparams.vocab_size == 31 and cli.model.hparams.vocab[0] == "xxbos"


def test_predict_writes_continuations(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli_main(["fit", "--config", str(CONFIGS / "human_numbers.yaml"), "--trainer.max_epochs", "1",
              "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "1"])
    last = tmp_path / "lightning_logs" / "human_numbers" / "checkpoints" / "last.ckpt"
    restored = LanguageModelModule.load_from_checkpoint(last)
    assert restored.hparams.vocab[0] == "xxbos"  # the vocabulary travels with the checkpoint
    cli_main(["predict", "--config", str(CONFIGS / "human_numbers.yaml"), "--ckpt_path", str(last)])
    text = (tmp_path / "predictions" / "human_numbers.txt").read_text()
    assert text.count("prompt:") == 2 and "greedy:  eight thousand one hundred" in text
