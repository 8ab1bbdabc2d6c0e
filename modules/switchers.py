"""Policies that decide, step by step, whether a GAN trains its critic or its generator."""

from typing import Literal

Turn = Literal["critic", "generator"]


class Switcher:
    """Base class: ``next_turn`` is asked before each optimisation step, ``record`` told after it."""

    def reset(self) -> None:
        """Forget everything (start of a fit)."""

    def next_turn(self) -> Turn:
        raise NotImplementedError

    def record(self, turn: Turn, loss: float) -> None:
        """The loss of the step just taken for ``turn``."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restores what ``state_dict`` returned (for resumed runs)."""


class FixedSwitcher(Switcher):
    """``critic_steps`` critic steps, then one generator step, over and over (WGAN: 5).

    Args:
        critic_steps: critic steps per generator step.
    """

    def __init__(self, critic_steps: int = 5):
        if critic_steps < 1:
            raise ValueError(f"critic_steps must be at least 1, not {critic_steps}")
        self.critic_steps = critic_steps
        self.done = 0

    def reset(self) -> None:
        self.done = 0

    def next_turn(self) -> Turn:
        return "critic" if self.done < self.critic_steps else "generator"

    def record(self, turn: Turn, loss: float) -> None:
        self.done = self.done + 1 if turn == "critic" else 0

    def state_dict(self) -> dict:
        return {"done": self.done}

    def load_state_dict(self, state: dict) -> None:
        self.done = state.get("done", 0)


class AdaptiveSwitcher(Switcher):
    """The lesson's ``AdaptiveGANSwitcher``: train the critic until its loss drops below
    ``critic_threshold``, then take one generator step, then back to the critic.

    A cap on consecutive critic steps keeps a critic that cannot get below the threshold from
    starving the generator for ever.

    Args:
        critic_threshold: critic loss under which the generator gets its turn (0.65 in the lesson).
        max_critic_steps: most critic steps in a row before the generator gets a turn anyway.
    """

    def __init__(self, critic_threshold: float = 0.65, max_critic_steps: int = 100):
        self.critic_threshold = critic_threshold
        self.max_critic_steps = max_critic_steps
        self.critic_in_a_row = 0
        self.generator_due = False

    def reset(self) -> None:
        self.critic_in_a_row = 0
        self.generator_due = False

    def next_turn(self) -> Turn:
        return "generator" if self.generator_due else "critic"

    def record(self, turn: Turn, loss: float) -> None:
        if turn == "generator":
            self.critic_in_a_row = 0
            self.generator_due = False
            return
        self.critic_in_a_row += 1
        self.generator_due = loss < self.critic_threshold or self.critic_in_a_row >= self.max_critic_steps

    def state_dict(self) -> dict:
        return {"critic_in_a_row": self.critic_in_a_row, "generator_due": self.generator_due}

    def load_state_dict(self, state: dict) -> None:
        self.critic_in_a_row = state.get("critic_in_a_row", 0)
        self.generator_due = state.get("generator_due", False)
