"""Command line for every task: ``python cli.py {fit,validate,test,predict,lr_find} --config ...``, and
``python cli.py export --ckpt_path ... --format onnx|torch_export --output ...`` (see ``exporter``)."""

import json
import sys
from pathlib import Path

from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.tuner import Tuner
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.model_helpers import is_overridden

from callbacks.trainer_switches import ConfigBesideLogs, without_switched_off
from common.errors import UserInputError
from common.hardware import native_precision
from modules.checkpoints import read_checkpoint, upgrade_hyperparameters

# Facts the model needs from its data; each is linked only where both classes have it.
DATA_FACTS = ("num_classes", "in_channels", "vocab_size", "vocab", "ignore_index", "class_names", "image_size")
CONFIG_FLAGS = ("--config", "-c")


class Lesson7Trainer(Trainer):
    """Lightning's Trainer plus ``lr_find``, the lesson's ``learn.lr_find(); learn.recorder.plot()``."""

    def lr_find(
        self,
        model: LightningModule,
        datamodule: LightningDataModule | None = None,
        min_lr: float = 1e-6,
        max_lr: float = 1.0,
        num_training: int = 100,
        plot_file: str = "lr_find.png",
    ) -> float | None:
        """Sweeps the learning rate over a few batches, saves loss against rate with the suggestion.

        Args:
            model: the module to probe; its weights are restored afterwards.
            datamodule: the data to probe with.
            min_lr: rate of the first batch.
            max_lr: rate of the last batch.
            num_training: batches in the sweep.
            plot_file: PNG to write the plot to.
        """
        finder = Tuner(self).lr_find(
            model, datamodule=datamodule, min_lr=min_lr, max_lr=max_lr, num_training=num_training,
            update_attr=False,
        )
        suggestion = finder.suggestion()
        figure = finder.plot(suggest=True)
        figure.axes[0].set_title(f"suggested learning rate: {suggestion:.2e}" if suggestion else "no suggestion")
        Path(plot_file).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(plot_file, dpi=100)
        rank_zero_info(f"lr_find: suggested learning rate {suggestion}; plot saved to {plot_file}")
        return suggestion


class Lesson7CLI(LightningCLI):
    """LightningCLI with a checkpoint callback, data-to-model links and the ``lr_find`` subcommand.

    Given ``--ckpt_path``, the model and data options stored in the checkpoint fill in what the
    command line does not say: they override the config file, and options given on the command
    line override them (Lightning's own CLI lets the checkpoint win over the command line).
    """

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {**LightningCLI.subcommands(), "lr_find": {"model", "datamodule"}}

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # Two checkpoint callbacks: the best by the task's metric, and ``last.ckpt`` rewritten after
        # every validation. (Lightning 2.6's ``save_last`` only writes last.ckpt when a best one is
        # saved at the same step, which would leave a stale file to resume from.) Configs give both
        # a fixed ``dirpath`` so that ``--ckpt_path last`` finds it from a new process.
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.filename": "best-{epoch}"})
        parser.add_lightning_class_args(ModelCheckpoint, "last_checkpoint")
        parser.set_defaults({
            "last_checkpoint.filename": "last", "last_checkpoint.monitor": None,
            "last_checkpoint.save_top_k": 1, "last_checkpoint.enable_version_counter": False,
        })
        for fact in DATA_FACTS:
            parser.link_arguments(f"data.{fact}", f"model.init_args.{fact}", apply_on="instantiate")

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        super().parse_arguments(parser, args)
        words = list(sys.argv[1:] if args is None else args)
        subcommand = self.config.get("subcommand")
        checkpoint = self._checkpoint_file(self.config[subcommand]) if subcommand else None
        if checkpoint is None:
            return
        stored = read_checkpoint(checkpoint, "--ckpt_path")
        sections = []
        for key, hparams_key in (("model", "hyper_parameters"), ("data", "datamodule_hyper_parameters")):
            hparams = upgrade_hyperparameters(stored.get(hparams_key) or {}) if key == "model" else dict(
                stored.get(hparams_key) or {})
            hparams.pop("_instantiator", None)
            class_path = hparams.pop("_class_path", None)
            if class_path:  # saved by this CLI: the class and every option it was built with
                sections += [f"--{key}", json.dumps({"class_path": class_path, "init_args": hparams})]
        # After the config files and before the other options: the command line wins. A ``last``
        # becomes the file it names, so that Lightning resumes from the same one.
        words = [str(checkpoint) if word == "last" and words[i - 1] == "--ckpt_path" else
                 f"--ckpt_path={checkpoint}" if word == "--ckpt_path=last" else word for i, word in enumerate(words)]
        at = _after_config_files(words, subcommand)
        self.config = parser.parse_args([*words[:at], *sections, *words[at:]])

    def _parse_ckpt_path(self) -> None:
        """Replaced by ``parse_arguments``, which puts the command line above the checkpoint."""

    def _instantiate_trainer(self, config: dict, callbacks: list):
        """Lightning's, with the callbacks of features the trainer options switch off left out, and
        ``precision: null`` made the hardware's native one (``common.hardware.native_precision``)."""
        listed = config.get("callbacks") or []
        config = {**config, "callbacks": without_switched_off(listed if isinstance(listed, list) else [listed], config)}
        if config.get("precision") is None:
            config["precision"] = native_precision(config.get("accelerator") or "auto")
            rank_zero_info(f"precision: {config['precision']}, the fastest this hardware runs natively "
                           "(--trainer.precision 32-true or bf16-mixed to choose)")
        return super()._instantiate_trainer(config, without_switched_off(callbacks, config))

    def before_test(self) -> None:
        if not is_overridden("test_step", self.model):
            raise UserInputError(
                f"{type(self.model).__name__} has no test: {getattr(self.model, 'no_test_reason', 'no test step')}."
            )

    @staticmethod
    def _checkpoint_file(config) -> Path | None:
        """The file ``--ckpt_path`` names.

        ``last`` is the newest of the ``last*.ckpt`` in the configs' checkpoint folders and of the
        ``hpc_ckpt_*.ckpt`` that Lightning saves in ``default_root_dir`` when SLURM signals a job
        to stop (SIGUSR1), so that a requeued job launched with ``--ckpt_path last`` resumes from
        wherever it stopped; None when there is none yet (the run starts fresh).
        """
        ckpt_path = config.get("ckpt_path")
        if ckpt_path in (None, "best", "hpc", "registry"):
            return None
        if ckpt_path != "last":
            return Path(ckpt_path)
        folders = {config.get(key, {}).get("dirpath") for key in ("checkpoint", "last_checkpoint")} - {None}
        candidates = [path for folder in folders for path in Path(folder).glob("last*.ckpt")]
        candidates += Path(config.get("trainer", {}).get("default_root_dir") or ".").glob("hpc_ckpt_*.ckpt")
        return max(candidates, key=lambda path: path.stat().st_mtime) if candidates else None


def _after_config_files(words: list[str], subcommand: str) -> int:
    """Index in ``words`` just after the subcommand and the last config file given after it."""
    at = words.index(subcommand) + 1
    for index in range(at, len(words)):
        word = words[index]
        if word in CONFIG_FLAGS:
            at = index + 2
        elif word.split("=", 1)[0] in CONFIG_FLAGS:
            at = index + 1
    return at


def cli_main(args: list[str] | None = None, extra_callbacks: list | None = None) -> Lesson7CLI:
    """Runs the CLI; problems with the user's data or options end in one paragraph, exit code 2.

    Args:
        args: command-line words (``sys.argv[1:]`` when None).
        extra_callbacks: callback instances added to the trainer, for tests and benchmarks.
    """
    words = list(sys.argv[1:] if args is None else args)
    try:
        if words[:1] == ["export"]:  # reads everything from the checkpoint: no config, no trainer
            from exporter import main as export_main

            return export_main(words[1:])
        return Lesson7CLI(
            LightningModule,
            LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            trainer_class=Lesson7Trainer,
            trainer_defaults={
                "logger": {"class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                           "init_args": {"save_dir": "lightning_logs", "name": "", "default_hp_metric": False}},
                # Instances here are added to whatever callbacks the config lists.
                "callbacks": list(extra_callbacks or []),
            },
            args=args,
            save_config_callback=ConfigBesideLogs,
            save_config_kwargs={"overwrite": True},
        )
    except UserInputError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except Exception as error:
        missing = _missing_package(error)
        if missing is None:
            raise
        print(f"error: {missing}", file=sys.stderr)
        sys.exit(2)


def _missing_package(error: BaseException) -> ModuleNotFoundError | None:
    """The missing package behind ``error``, if one is: a class the options name (``RichModelSummary``
    without ``rich``) needs a package this environment lacks, which the user fixes with pip."""
    while error is not None:
        if isinstance(error, ModuleNotFoundError):
            return error
        error = error.__cause__
    return None


if __name__ == "__main__":
    cli_main()
