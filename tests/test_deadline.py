"""dse.deadline: calls given up at a deadline, errors passed through."""

import threading
import time

import pytest

from dse import deadline


def test_no_deadline_is_an_ordinary_call():
    assert deadline.call(lambda a, b: a + b, 2, 3) == 5


def test_a_call_that_outlives_the_deadline_raises():
    release = threading.Event()
    with pytest.raises(deadline.OutOfTime):
        deadline.call(release.wait, deadline=time.perf_counter() + 0.01)
    assert deadline.pending()
    release.set()


def test_a_passed_deadline_does_not_start_the_call():
    started = []
    with pytest.raises(deadline.OutOfTime):
        deadline.call(started.append, 1, deadline=time.perf_counter() - 1.0)
    assert started == []


def test_errors_reach_the_caller():
    def boom():
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        deadline.call(boom, deadline=time.perf_counter() + 60)


def test_the_callers_64_bit_scope_reaches_the_worker():
    import jax

    with jax.enable_x64(True):
        inside = deadline.call(lambda: jax.config.jax_enable_x64, deadline=time.perf_counter() + 60)
    outside = deadline.call(lambda: jax.config.jax_enable_x64, deadline=time.perf_counter() + 60)
    assert (inside, outside) == (True, False)
