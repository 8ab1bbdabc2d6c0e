"""Two networks trained in turns: the loop shared by the lesson's GAN and its WGAN."""

import lightning.pytorch as pl
import torch
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from modules.checkpoints import LoadsOlderCheckpoints
from modules.distributed import every_parameter_must_get_a_gradient


class AdversarialModule(LoadsOlderCheckpoints, pl.LightningModule):
    """A generator and a critic under manual optimisation, one network per step.

    Before each step the ``switcher`` names whose turn it is. On a critic turn the critic learns
    from ``critic_loss`` (the subclass generates the fakes without gradients); on a generator turn
    the generator learns from ``generator_losses`` while the critic judges without learning (no
    gradients for its weights). The switcher is told each step's loss, and its state travels with
    checkpoints, so a resumed run takes the turns an uninterrupted one would have.

    Under DDP every process takes the same turn: the switcher is told the loss averaged over the
    processes, not each one's own. And only the network whose turn it is takes part in the
    gradient exchange: under plain DDP, backward runs without DDP's gradient hooks (which expect
    every parameter of both networks to get a gradient each step), and the stepping network's
    gradients are then averaged over the processes in one call, so ``--trainer.strategy ddp``
    works without ``find_unused_parameters`` (with it, DDP's own exchange is used).

    Subclasses set ``self.generator``, ``self.critic`` and ``self.switcher`` and implement
    ``critic_loss``, ``generator_losses`` and ``make_optimizer``. TensorBoard shows
    ``train/critic_loss``, ``train/generator_loss`` (and its terms) and
    ``train/critic_steps_per_generator_step``.
    """

    def __init__(self):
        super().__init__()
        self._critic_steps = 0

    @property
    def automatic_optimization(self) -> bool:
        return False  # two optimizers, stepped in turns

    def training_step(self, batch, batch_idx: int) -> dict:
        critic_optimizer, generator_optimizer = self.optimizers()
        turn = self.switcher.next_turn()
        if turn == "critic":
            loss = self.critic_loss(batch)
            self._descend(critic_optimizer, loss, self.critic)
            self.after_critic_step()
            self._critic_steps += 1
            self.log("train/critic_loss", loss, prog_bar=True)
        else:
            with self.toggled_optimizer(generator_optimizer):  # the critic judges but does not learn
                terms = self.generator_losses(batch)
                loss = terms["loss"]
                self._descend(generator_optimizer, loss, self.generator)
            self.log("train/generator_loss", loss, prog_bar=True)
            self.log_dict({f"train/generator_{name}": value for name, value in terms.items() if name != "loss"})
            self.log("train/critic_steps_per_generator_step", float(self._critic_steps))
            self._critic_steps = 0
        self.switcher.record(turn, self._agreed(loss))
        return {"loss": loss.detach()}

    def configure_optimizers(self):
        return [self.make_optimizer(self.critic.parameters()), self.make_optimizer(self.generator.parameters())]

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["switcher"] = self.switcher.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.switcher.load_state_dict(checkpoint.get("switcher", {}))

    # -- what subclasses provide -------------------------------------------------------------------

    def critic_loss(self, batch) -> torch.Tensor:
        """The critic's loss on a batch (fakes generated without gradients)."""
        raise NotImplementedError

    def generator_losses(self, batch) -> dict[str, torch.Tensor]:
        """The generator's loss on a batch as ``loss``, plus its terms."""
        raise NotImplementedError

    def make_optimizer(self, parameters) -> torch.optim.Optimizer:
        """The optimizer of one network."""
        raise NotImplementedError

    def after_critic_step(self) -> None:
        """Runs after every critic update (the WGAN clips the critic's weights here)."""

    def _descend(self, optimizer, loss: torch.Tensor, network: torch.nn.Module) -> None:
        optimizer.zero_grad(set_to_none=True)
        if every_parameter_must_get_a_gradient(self.trainer):
            with self.trainer.strategy.block_backward_sync():  # DDP's hooks would wait for the other network
                self.manual_backward(loss)
            average_gradients(network, self.trainer.strategy)
        else:
            self.manual_backward(loss)
        optimizer.step()

    def _agreed(self, loss: torch.Tensor) -> float:
        """The loss averaged over the processes: what the switcher decides from, the same everywhere."""
        if self.trainer.world_size > 1:
            loss = self.trainer.strategy.reduce(loss.detach(), reduce_op="mean")
        return loss.item()


def average_gradients(network: torch.nn.Module, strategy) -> None:
    """Averages ``network``'s gradients over the processes, in one all-reduce of them all."""
    grads = [p.grad for p in network.parameters() if p.grad is not None]
    if not grads:
        return
    flat = strategy.reduce(_flatten_dense_tensors(grads), reduce_op="mean")
    for grad, averaged in zip(grads, _unflatten_dense_tensors(flat, grads), strict=True):
        grad.copy_(averaged)
