"""The weights options' one convention: ``None`` (or the word ``none`` typed on a command line) means none."""


def weights_given(weights: str | None) -> bool:
    """Whether a weights option (``imagenet``, a file, ``none``/None) asks for any weights at all."""
    return bool(weights) and str(weights).lower() != "none"
