import pytest

from pingpong.core.rates import Rate, parse_rate


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("100/minute", Rate(100, 60)),
        ("1/second", Rate(1, 1)),
        ("5/hour", Rate(5, 3600)),
        ("7/day", Rate(7, 86400)),
        ("5/10s", Rate(5, 10)),
        (" 3 / 2s ", Rate(3, 2)),
    ],
)
def test_parses(text: str, rate: Rate) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize(
    "text", ["", "100", "100/minutes", "0/second", "5/0s", "-1/second", "1.5/second", "x/s", "5/s"]
)
def test_rejects_with_the_format(text: str) -> None:
    with pytest.raises(ValueError, match=r"invalid rate"):
        parse_rate(text)


def test_str_round_trips() -> None:
    for text in ("100/minute", "5/10s", "1/day"):
        assert str(parse_rate(text)) == text
