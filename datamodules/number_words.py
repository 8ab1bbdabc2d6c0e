"""English words for the numbers 1..9999, as in fast.ai's "human numbers" text."""

ONES = ["", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
        "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_words(number: int) -> list[str]:
    """``2019`` -> ``["two", "thousand", "nineteen"]``: no "and", no hyphens, 1 <= number <= 9999."""
    if not 1 <= number <= 9999:
        raise ValueError(f"human numbers run from 1 to 9999, not {number}")
    thousands, rest = divmod(number, 1000)
    hundreds, rest = divmod(rest, 100)
    words = []
    if thousands:
        words += [ONES[thousands], "thousand"]
    if hundreds:
        words += [ONES[hundreds], "hundred"]
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        words += [TENS[tens]] + ([ONES[ones]] if ones else [])
    elif rest:
        words.append(ONES[rest])
    return words


def number_stream(first: int, last: int, separator: str = ",", start: str = "xxbos") -> list[str]:
    """The tokens of ``first .. last`` in words, separated by ``separator``, after a ``start`` token.

    ``number_stream(1, 3)`` is ``["xxbos", "one", ",", "two", ",", "three"]``: fast.ai's text, one
    document opened by its beginning-of-stream token.
    """
    tokens = [start]
    for number in range(first, last + 1):
        if number > first:
            tokens.append(separator)
        tokens += number_words(number)
    return tokens
