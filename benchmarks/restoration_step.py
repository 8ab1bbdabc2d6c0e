r"""Training-step throughput of the image-restoration modules under Lightning against a plain PyTorch loop.

``--module`` picks the model; its hyperparameters and data options are read from its config, so
the benchmark times what ``cli.py fit`` trains:

- ``generator``: ``RestorationModule`` with the MSE loss (``configs/restore_generator.yaml``:
  MobileNetV2 U-Net with blur, self-attention, weight norm, ``y_range``, channels-last) on
  crappified photos.
- ``superres``: the same U-Net under the VGG16 feature loss on JPEG-60 photos without drawn text
  (``configs/superres.yaml``; ``--image_size 256`` reads ``configs/superres_256.yaml``, bs 4).
- ``critic``: ``CriticModule`` on real against generated photos (``configs/restore_critic.yaml``).
- ``gan``: ``GANModule``, the U-Net against the patch critic (``configs/restore_gan.yaml``).
- ``wgan``: ``WGANModule`` on 64 px photos, 5 critic steps per generator step with weight
  clipping (``configs/wgan.yaml``).

Both loops build the model the same way, draw the same batches from the datamodule's
``train_dataloader`` (``on_after_batch_transfer`` applied), call the module's own losses
(``training_losses``, ``training_loss``, ``critic_loss`` / ``generator_losses``) and build its
optimizers the way ``configure_optimizers`` does (``one_cycle_adamw``, ``make_optimizer``), so
only the loop differs. Lightning runs with the config's TensorBoard logging interval, progress
bar and precision, as ``cli.py fit`` would; under ``bf16-mixed`` the plain step runs inside
``torch.autocast`` with bfloat16, as Lightning's does. Each run takes 2 warm-up steps, then times ``--steps``; the two
alternate for ``--rounds`` rounds in one process. The U-Nets train in their unfrozen phase
(``frozen_epochs`` 0), so every parameter gets a gradient. Weights do not change the cost of a
step, so the networks start random unless given: ``--encoder_weights`` and ``--feature_weights``
(local state dicts) make the U-Net encoder and the VGG16 ImageNet-trained, and
``--generator_checkpoint`` / ``--critic_checkpoint`` start super-resolution and the GAN from
earlier runs, as their configs do. Without a checkpoint, a network's architecture comes from the
config of the run that would have written it (``superres_mse.yaml`` for super-resolution,
``restore_generator.yaml`` and ``restore_critic.yaml`` for the GAN).

The GANs' turns come from a ``FixedSwitcher`` (``--critic_steps`` critic steps, then one generator
step) in both loops. ``restore_gan.yaml`` uses the lesson's adaptive switcher, which hands the
generator its turn when the critic's loss drops below a threshold; that makes the sequence of
turns depend on the losses, so two runs would time different mixes of critic and generator
steps. A fixed schedule makes both loops do exactly the same steps in the same order. Every
``GANModule`` and ``WGANModule`` step still reads its loss back (``loss.item()`` for the switcher),
and so does the plain loop. Their s/step is the mean over the mix of critic and generator steps
in the timed window.

``--peak_memory`` first reports the memory of one training step (one critic plus one generator
step for the GANs) of a fresh model and optimizer: ``torch.cuda.max_memory_allocated`` on CUDA;
on the CPU the growth of the process's peak resident set (``ru_maxrss``) across the step, which
includes the optimizer state the first step creates. Each module needs ``--steps`` + 2 training
batches: the 600 pets photos give 9 batches of 64 for the WGAN. The critic's generated photos are
the generator's predictions (``scripts/restore_chain.sh`` writes them); any folder of images named
like the photos costs the same per step, the photo folder itself included. Runs from the
repository root:

    python -m benchmarks.restoration_step --module generator --data_dir ../shared/data/pets/images \
        --encoder_weights ../shared/weights/mobilenet_v2_imagenet_features.pth --steps 10 --rounds 3
    python -m benchmarks.restoration_step --module superres --data_dir ../shared/data/pets/images \
        --encoder_weights ../shared/weights/mobilenet_v2_imagenet_features.pth \
        --feature_weights ../shared/weights/vgg16_imagenet_features.pth --steps 10 --rounds 3
    python -m benchmarks.restoration_step --module superres --image_size 256 --peak_memory \
        --data_dir ../shared/data/pets/images \
        --encoder_weights ../shared/weights/mobilenet_v2_imagenet_features.pth \
        --feature_weights ../shared/weights/vgg16_imagenet_features.pth --steps 10 --rounds 3
    python -m benchmarks.restoration_step --module critic --real_dir ../shared/data/pets/images \
        --generated_dir predictions/restore_generator --steps 10 --rounds 3
    python -m benchmarks.restoration_step --module gan --data_dir ../shared/data/pets/images \
        --critic_steps 1 --steps 10 --rounds 3
    python -m benchmarks.restoration_step --module wgan --data_dir ../shared/data/pets/images \
        --steps 6 --rounds 5
"""

import argparse
import gc
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import lightning.pytorch as pl
import torch

from benchmarks import configs
from benchmarks.plain import descend, one_cycle_all, unfrozen_unet
from benchmarks.timing import StepTimer, compare, print_seconds_per_step, tensorboard_logger
from datamodules.critic_data import CriticDataModule
from datamodules.image_folder import ImageFolderDataModule
from datamodules.restoration import RestorationDataModule
from modules.adversarial import AdversarialModule
from modules.critic import CriticModule
from modules.gan import GANModule
from modules.restoration import RestorationModule
from modules.switchers import FixedSwitcher
from modules.wgan import WGANModule

WARMUP = 2
CONFIG_OF = {"generator": "restore_generator.yaml", "superres": "superres.yaml", "critic": "restore_critic.yaml",
             "gan": "restore_gan.yaml", "wgan": "wgan.yaml"}
GANS = ("gan", "wgan")
# The configs whose runs write the networks a later stage starts from: (network, the checkpoint
# option that names the run, that run's config). Without the checkpoint the architecture is read there.
EARLIER_STAGES = {
    "superres": [("generator", "generator_checkpoint", "superres_mse.yaml")],
    "gan": [("generator", "generator_checkpoint", "restore_generator.yaml"),
            ("critic", "critic_checkpoint", "restore_critic.yaml")],
}

Step = Callable[[object], None]


def config_of(module: str, image_size: int | None) -> tuple[str, dict]:
    """The config file's name and contents; super-resolution at 256 px has its own config."""
    name = "superres_256.yaml" if module == "superres" and image_size == 256 else CONFIG_OF[module]
    return name, configs.read_config(name)


def build_datamodule(args: argparse.Namespace, config: dict) -> pl.LightningDataModule:
    options = configs.data_options(config)
    options.update(image_size=args.image_size, batch_size=args.batch_size, num_workers=args.num_workers)
    if args.module == "critic":
        options.update(real_dir=args.real_dir, generated_dir=args.generated_dir)
        return CriticDataModule(**options)
    options["data_dir"] = args.data_dir
    if args.module == "wgan":
        return ImageFolderDataModule(**options)
    options["cache_dir"] = args.cache_dir
    return RestorationDataModule(**options)


def benchmark_options(args: argparse.Namespace, config: dict) -> dict:
    """The config's model options with the benchmark's changes (see the module docstring)."""
    options = configs.model_options(config)
    options.pop("switcher", None)
    if "lpips_weights" in options:
        options["lpips_weights"] = None  # an evaluation metric: validation is off in the timed runs
    if args.module in ("generator", "superres"):
        options.update(encoder_weights=args.encoder_weights, feature_weights=args.feature_weights,
                       schedule={**options["schedule"], "frozen_epochs": 0})
    elif args.module == "wgan":
        options.update(image_size=args.image_size)
    for network, option, earlier in EARLIER_STAGES.get(args.module, []):
        options[option] = getattr(args, option)
        if options[option] is None:
            options[network] = configs.model_options(configs.read_config(earlier))[network]
    return options


def build_model(args: argparse.Namespace, options: dict) -> pl.LightningModule:
    if args.module in ("generator", "superres"):
        return RestorationModule(**options)
    if args.module == "critic":
        return CriticModule(**options)
    module = GANModule if args.module == "gan" else WGANModule
    return module(**options, switcher=FixedSwitcher(args.critic_steps))  # a fresh schedule per run


def load_starting_weights(model: pl.LightningModule) -> None:
    """What a fit from scratch loads before its first step (``setup`` and ``on_fit_start``), without a Trainer."""
    model.setup("fit")  # the feature loss's VGG16 weights
    if isinstance(model, RestorationModule | GANModule):
        model.load_pretrained()


# One plain training step per module: the work of the module's training_step and optimizer step.

def restoration_step(model: RestorationModule, total_steps: int) -> Step:
    """The restoration loss under the module's fine-tuning optimizer, with no frozen phase."""
    optimizer, scheduler = unfrozen_unet(model, model.generator.encoder, total_steps)

    def step(batch: dict) -> None:
        descend(optimizer, model.training_losses(batch)["loss"])
        scheduler.step()

    return step


def critic_step(model: CriticModule, total_steps: int) -> Step:
    """The critic's patch BCE under the module's one-cycle optimizer and schedule."""
    optimizer, scheduler = one_cycle_all(model, total_steps)

    def step(batch: dict) -> None:
        descend(optimizer, model.training_loss(batch))
        scheduler.step()

    return step


def adversarial_step(model: AdversarialModule, total_steps: int) -> Step:
    """``AdversarialModule.training_step`` without Lightning: the switcher's turn, one network's update."""
    critic_optimizer = model.make_optimizer(model.critic.parameters())
    generator_optimizer = model.make_optimizer(model.generator.parameters())

    def step(batch) -> None:
        turn = model.switcher.next_turn()
        if turn == "critic":
            loss = model.critic_loss(batch)
            descend(critic_optimizer, loss)
            model.after_critic_step()
        else:
            model.critic.requires_grad_(False)  # what toggled_optimizer does: the critic judges, does not learn
            loss = model.generator_losses(batch)["loss"]
            descend(generator_optimizer, loss)
            model.critic.requires_grad_(True)
        model.switcher.record(turn, loss.item())

    return step


PLAIN_STEPS = {"generator": restoration_step, "superres": restoration_step, "critic": critic_step,
               "gan": adversarial_step, "wgan": adversarial_step}


def synchronize(device: torch.device) -> None:
    """Waits for queued GPU work, so that a clock read covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def to_device(batch, device: torch.device):
    """What Lightning's batch transfer does: every tensor to the device, non-blocking off the CPU."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=device.type != "cpu")
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    return batch


class SyncedStepTimer(StepTimer):
    """``StepTimer`` whose clock reads wait for the GPU, as the plain loop's do."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == self.warmup:
            synchronize(pl_module.device)
        super().on_train_batch_start(trainer, pl_module, batch, batch_idx)

    def on_train_epoch_end(self, trainer, pl_module):
        synchronize(pl_module.device)
        super().on_train_epoch_end(trainer, pl_module)


def fresh_plain_model(args, options: dict, device: torch.device, total_steps: int) -> tuple[pl.LightningModule, Step]:
    model = build_model(args, options)
    load_starting_weights(model)
    model.to(device).train()
    step_fn = PLAIN_STEPS[args.module](model, total_steps)

    def step_in_precision(batch: dict) -> None:
        """The plain loop's counterpart of Lightning's precision setting (full or bf16 mixed)."""
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16-mixed"):
            step_fn(batch)

    return model, step_in_precision


def lightning_epoch(args, options: dict, config: dict, datamodule, steps: int) -> tuple[float, int]:
    model = build_model(args, options)
    timer = SyncedStepTimer(WARMUP)
    trainer = pl.Trainer(
        max_epochs=1, limit_train_batches=steps + WARMUP, limit_val_batches=0, num_sanity_val_steps=0,
        accelerator=args.accelerator, devices=1, log_every_n_steps=config["trainer"]["log_every_n_steps"],
        precision=args.precision, enable_checkpointing=False,
        logger=tensorboard_logger(args.module),
        callbacks=[timer, pl.callbacks.TQDMProgressBar(refresh_rate=configs.progress_refresh(config))],
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=datamodule)
    return timer.seconds, timer.timed_steps


def plain_epoch(args, options: dict, datamodule, steps: int, device: torch.device) -> tuple[float, int]:
    _, step_fn = fresh_plain_model(args, options, device, steps + WARMUP)
    started, timed = 0.0, 0
    for index, batch in enumerate(datamodule.train_dataloader()):
        if index == WARMUP:
            synchronize(device)
            started = time.perf_counter()
        if index == steps + WARMUP:
            break
        step_fn(datamodule.on_after_batch_transfer(to_device(batch, device), 0))
        timed += index >= WARMUP
    synchronize(device)
    return time.perf_counter() - started, timed


def _reset_peak_rss() -> bool:
    """Lowers the process's peak-RSS mark to its current RSS (Linux), so earlier peaks do not hide the step's."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_memory(args, options: dict, datamodule, device: torch.device) -> str:
    """Memory of the first training step (one full critic/generator cycle for the GANs) of a fresh model."""
    steps = args.critic_steps + 1 if args.module in GANS else 1
    _, step_fn = fresh_plain_model(args, options, device, steps)
    loader = iter(datamodule.train_dataloader())
    batches = [datamodule.on_after_batch_transfer(to_device(next(loader), device), 0) for _ in range(steps)]
    what = f"{steps} steps: {args.critic_steps} critic + 1 generator" if args.module in GANS else "one step"
    gc.collect()
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        for batch in batches:
            step_fn(batch)
        synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
        return (f"peak memory ({what}): {peak / 2**20:.0f} MiB (torch.cuda.max_memory_allocated; "
                f"{before / 2**20:.0f} MiB of weights and batches were allocated before the step)")
    reset = _reset_peak_rss()
    unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit
    for batch in batches:
        step_fn(batch)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit
    caveat = ("peak mark reset to the current RSS first" if reset
              else "peak mark not resettable here: an earlier, higher peak hides part of the step's")
    return (f"peak memory ({what}, CPU): peak RSS grew by {(after - before) / 2**20:.0f} MiB across it, to "
            f"{after / 2**20:.0f} MiB (resource.getrusage ru_maxrss; includes the optimizer state created on "
            f"first use; {caveat})")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", required=True, choices=sorted(CONFIG_OF))
    parser.add_argument("--data_dir", help="folder of photos (all modules but critic)")
    parser.add_argument("--real_dir", help="critic: folder of real photos")
    parser.add_argument("--generated_dir", help="critic: folder of generated images named like the photos")
    parser.add_argument("--cache_dir", default="/tmp/lesson7-bench/cache", help="where damaged copies are written")
    parser.add_argument("--encoder_weights", help="generator/superres: local MobileNetV2 state dict (else random)")
    parser.add_argument("--feature_weights", help="superres: local VGG16 state dict (else random)")
    parser.add_argument("--generator_checkpoint", help="superres/gan: RestorationModule checkpoint to start from")
    parser.add_argument("--critic_checkpoint", help="gan: CriticModule checkpoint to start from")
    parser.add_argument("--critic_steps", type=int, help="gan/wgan: critic steps per generator step (gan 1, "
                        "wgan its config's)")
    parser.add_argument("--image_size", type=int, help="the config's by default; superres 256 reads superres_256")
    parser.add_argument("--batch_size", type=int, help="the config's by default")
    parser.add_argument("--num_workers", type=int, help="DataLoader workers; the config's by default")
    parser.add_argument("--accelerator", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peak_memory", action="store_true", help="first report the memory of one training step")
    args = parser.parse_args(argv)
    if args.module == "critic" and not (args.real_dir and args.generated_dir):
        parser.error("--module critic needs --real_dir and --generated_dir")
    if args.module != "critic" and not args.data_dir:
        parser.error(f"--module {args.module} needs --data_dir")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config_name, config = config_of(args.module, args.image_size)
    data_config = config["data"]["init_args"]
    args.image_size = args.image_size or data_config["image_size"]
    args.batch_size = args.batch_size or data_config["batch_size"]
    args.num_workers = data_config["num_workers"] if args.num_workers is None else args.num_workers
    if args.critic_steps is None:
        switcher = config["model"]["init_args"].get("switcher") or {}
        fixed = switcher.get("class_path", "").endswith("FixedSwitcher")
        args.critic_steps = switcher.get("init_args", {}).get("critic_steps", 5) if fixed else 1
    args.precision = str(config["trainer"].get("precision", "32-true"))
    if args.precision not in ("32-true", "32", "bf16-mixed"):
        raise SystemExit(f"{config_name}: precision {args.precision} is not supported here (32-true or bf16-mixed).")
    device = torch.device(args.accelerator)

    datamodule = build_datamodule(args, config)
    datamodule.prepare_data()
    datamodule.setup("fit")
    options = benchmark_options(args, config)
    options["in_channels"] = datamodule.in_channels
    batches = len(datamodule.train_dataloader())
    if batches < args.steps + WARMUP:
        raise SystemExit(f"The data give {batches} training batches of {args.batch_size}; {args.steps} timed steps "
                         f"need {args.steps + WARMUP}. Use fewer --steps, a smaller --batch_size or more photos.")

    memory = peak_memory(args, options, datamodule, device) if args.peak_memory else None
    result = compare(lambda: lightning_epoch(args, options, config, datamodule, args.steps),
                     lambda: plain_epoch(args, options, datamodule, args.steps, device), args.rounds)
    switching = f", {args.critic_steps} critic step(s) per generator step" if args.module in GANS else ""
    print(f"{args.module} ({config_name}{switching}), {args.image_size}x{args.image_size}, bs {args.batch_size}, "
          f"{args.precision}, {args.steps} timed steps x {args.rounds} rounds, {args.accelerator}, "
          f"{torch.get_num_threads()} threads")
    if memory:
        print(memory)
    print_seconds_per_step(result)


if __name__ == "__main__":
    main()
