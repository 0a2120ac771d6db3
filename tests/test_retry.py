"""The cluster layer's one retry policy (devloop.kube.retry), as a table."""

from __future__ import annotations

import pytest

from devloop.kube.retry import MAX_RETRY_AFTER_S, delay, retry_after


def no_jitter(low: float, high: float) -> float:
    return 1.0


def most_jitter(low: float, high: float) -> float:
    return high


@pytest.mark.parametrize(
    ("attempt", "initial", "cap", "asked", "expected"),
    [
        (1, 0.5, 30, None, 0.5),
        (2, 0.5, 30, None, 1.0),
        (4, 0.5, 30, None, 4.0),
        (10, 0.5, 30, None, 30.0),  # capped
        (1, 0.05, 0.2, 1.0, 1.0),  # the server asked for longer: it wins
        (4, 0.5, 30, 1.0, 4.0),  # the back-off is longer already
        (1, 0.5, 30, 0.0, 0.5),
        (1, 0.5, 30, 3600.0, MAX_RETRY_AFTER_S),  # an hour is not waited
    ],
)
def test_delay(
    attempt: int, initial: float, cap: float, asked: float | None, expected: float
) -> None:
    assert delay(attempt, initial, cap, asked, no_jitter) == pytest.approx(expected)


def test_jitter_never_goes_below_what_the_server_asked() -> None:
    assert delay(1, 1.0, 10, None, most_jitter) == pytest.approx(1.2)
    assert delay(1, 1.0, 10, 2.0, lambda low, high: low) == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (None, None),
        ({}, None),
        ({"Retry-After": "1"}, 1.0),
        ({"retry-after": "7"}, 7.0),  # header names are case-insensitive
        ({"Retry-After": " 2 "}, 2.0),
        ({"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}, None),  # a date: not read
        ({"Retry-After": "-1"}, None),
        ({"Content-Type": "application/json"}, None),
    ],
)
def test_retry_after(headers: dict[str, str] | None, expected: float | None) -> None:
    assert retry_after(headers) == expected
