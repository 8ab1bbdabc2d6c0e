import pytest

from modules.switchers import AdaptiveSwitcher, FixedSwitcher


def _play(switcher, critic_losses):
    """Feeds scripted critic losses; returns the sequence of turns taken."""
    losses = iter(critic_losses)
    turns = []
    while True:
        turn = switcher.next_turn()
        if turn == "critic":
            try:
                loss = next(losses)
            except StopIteration:
                return turns
        else:
            loss = 1.0
        turns.append(turn[0])
        switcher.record(turn, loss)


def test_adaptive_trains_critic_until_below_threshold():
    turns = _play(AdaptiveSwitcher(critic_threshold=0.65), [0.9, 0.8, 0.6, 0.7, 0.5, 0.64, 0.66, 0.9, 0.1])
    assert "".join(turns) == "cccg" + "ccg" + "cg" + "cccg"


def test_adaptive_caps_consecutive_critic_steps():
    turns = _play(AdaptiveSwitcher(critic_threshold=0.1, max_critic_steps=3), [0.9] * 7)
    assert "".join(turns) == "cccg" "cccg" "c"


def test_fixed_alternates_n_to_one():
    assert "".join(_play(FixedSwitcher(critic_steps=5), [0.0] * 11)) == "cccccg" "cccccg" "c"


def test_state_round_trip():
    switcher = AdaptiveSwitcher()
    switcher.record("critic", 0.9)
    switcher.record("critic", 0.9)
    clone = AdaptiveSwitcher()
    clone.load_state_dict(switcher.state_dict())
    assert clone.critic_in_a_row == 2 and clone.next_turn() == "critic"
    with pytest.raises(ValueError):
        FixedSwitcher(0)
