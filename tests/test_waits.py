"""The event loop's executor: threads reused, never joined at exit."""

from __future__ import annotations

import threading

from devloop.waits import DaemonThreads


def test_calls_one_after_another_reuse_one_thread() -> None:
    pool = DaemonThreads(workers=4)
    names = {pool.submit(lambda: threading.current_thread().ident).result(5) for _ in range(20)}
    assert len(names) == 1
    assert pool.started == 1


def test_a_blocked_call_does_not_hold_the_others_and_no_thread_is_joined() -> None:
    pool = DaemonThreads(workers=2)
    release = threading.Event()
    stuck = pool.submit(release.wait, 30)
    # the stuck call holds one thread: the next calls get the other
    assert [pool.submit(lambda n=n: n * 2).result(5) for n in range(5)] == [0, 2, 4, 6, 8]
    assert pool.started == 2
    workers = [t for t in threading.enumerate() if t.name == "pdwatch-io"]
    assert workers and all(t.daemon for t in workers)
    pool.shutdown(wait=True)  # returns at once, the stuck thread abandoned
    assert not stuck.done()
    release.set()
    assert stuck.result(5) is True


def test_with_every_thread_busy_work_waits_its_turn() -> None:
    pool = DaemonThreads(workers=1)
    release = threading.Event()
    first = pool.submit(release.wait, 30)
    second = pool.submit(lambda: "second")
    assert not second.done()
    release.set()
    assert (first.result(5), second.result(5), pool.started) == (True, "second", 1)
