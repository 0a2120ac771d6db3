"""The loop's state, its actions and its decisions (devloop.workflowstate): tables of
cases, pure, in milliseconds. The loop's own tests (test_loop.py, test_convergence.py)
show the same decisions against a cluster."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from devloop import workflowstate as ws
from devloop.kube.deploy import CycleResult
from devloop.kube.progress import RolloutResult
from devloop.manifests import CONTENT_HASH_ANNOTATION
from devloop.render import Bundle, RenderOptions, render
from devloop.workflowstate import (
    CycleBegan,
    CycleEnded,
    Pending,
    Requested,
    WorkflowState,
    reduce,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def deployment(template_hash: str = "h1", name: str = "hello", **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "uid": "u1", "generation": 3, **meta},
        "spec": {
            "template": {"metadata": {"annotations": {CONTENT_HASH_ANNOTATION: template_hash}}}
        },
    }


@pytest.fixture(scope="module")
def bundles() -> tuple[Bundle, Bundle]:
    first = render(EXAMPLES / "hello", RenderOptions())
    assert isinstance(first, Bundle)
    second = replace(first, content_hash="other")
    return first, second


# --- requests coalesce ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "asked", "after"),
    [
        # a save: its path, its reason, and when the watch saw it
        (
            Pending(),
            Requested(frozenset({"a.ts"}), "change", saved_at=5.0, now=9.0),
            Pending(frozenset({"a.ts"}), ("change",), False, False, None, 5.0),
        ),
        # paths add up, reasons are kept in order, the latest save counts
        (
            Pending(frozenset({"a.ts"}), ("change",), False, False, None, 5.0),
            Requested(frozenset({"b.ts"}), "change", saved_at=7.0, now=9.0),
            Pending(frozenset({"a.ts", "b.ts"}), ("change", "change"), False, False, None, 7.0),
        ),
        # a save seen earlier than one already pending does not move the time back
        (
            Pending(frozenset({"a.ts"}), ("change",), False, False, None, 7.0),
            Requested(frozenset({"b.ts"}), "change", saved_at=5.0, now=9.0),
            Pending(frozenset({"a.ts", "b.ts"}), ("change", "change"), False, False, None, 7.0),
        ),
        # a file polled, not watched: now; a watch clock ahead of now: now
        (
            Pending(),
            Requested(frozenset({"x"}), "change", now=9.0),
            Pending(frozenset({"x"}), ("change",), False, False, None, 9.0),
        ),
        (
            Pending(),
            Requested(frozenset({"x"}), "change", saved_at=12.0, now=9.0),
            Pending(frozenset({"x"}), ("change",), False, False, None, 9.0),
        ),
        # no paths: no save time
        (
            Pending(),
            Requested(frozenset(), "redeploy", force=True, now=9.0),
            Pending(frozenset(), ("redeploy",), True, False, None, None),
        ),
        # force sticks; follow-only holds only while every request is follow-only
        (
            Pending(frozenset(), ("redeploy",), True, False),
            Requested(frozenset(), "pod gone", follow_only=True, now=1.0),
            Pending(frozenset(), ("redeploy", "pod gone"), True, False),
        ),
        (
            Pending(),
            Requested(frozenset(), "pod gone", follow_only=True, now=1.0),
            Pending(frozenset(), ("pod gone",), False, True),
        ),
        (
            Pending(frozenset(), ("pod gone",), False, True),
            Requested(frozenset({"a.ts"}), "change", saved_at=1.0, now=1.0),
            Pending(frozenset({"a.ts"}), ("pod gone", "change"), False, False, None, 1.0),
        ),
    ],
)
def test_requests_coalesce(before: Pending, asked: Requested, after: Pending) -> None:
    assert ws.requested(before, asked) == after
    assert reduce(WorkflowState(pending=before), asked).pending == after


def test_a_rollback_request_forces_one_cycle_with_its_revision() -> None:
    state = reduce(WorkflowState(), ws.RollbackRequested(4))
    assert state.pending == Pending(frozenset(), ("rollback",), True, False, 4)


def test_pending_is_true_only_with_a_reason() -> None:
    assert not Pending()
    assert not Pending(frozenset({"a"}))
    assert Pending(reasons=("start",))


# --- the state's other actions ----------------------------------------------------------------


STEP = ws.RolloutStepped("p2", "started")


@pytest.mark.parametrize(
    ("before", "action", "after"),
    [
        (WorkflowState(), ws.Paused(), WorkflowState(paused=True)),
        (WorkflowState(paused=True), ws.Resumed(), WorkflowState()),
        (WorkflowState(), ws.Checked(), WorkflowState(checked=True)),
        (
            WorkflowState(pending=Pending(reasons=("change",)), cycle=2),
            CycleBegan(Pending(reasons=("change",)), Pending(reasons=("later",))),
            WorkflowState(pending=Pending(reasons=("later",)), cycle=3, cycling=True),
        ),
        (
            WorkflowState(pending=Pending(reasons=("change",))),
            ws.RetryJoined(),
            WorkflowState(),
        ),
        (WorkflowState(), ws.Named("a"), WorkflowState(names_sent=("a",))),
        (WorkflowState(names_sent=("a",)), ws.Named("a"), WorkflowState(names_sent=("a",))),
        (
            WorkflowState(names_sent=("a",)),
            ws.Named("b"),
            WorkflowState(names_sent=("a", "b")),
        ),
        (WorkflowState(serving="p1"), ws.Serving("p2"), WorkflowState(serving="p2")),
        (WorkflowState(known=deployment()), ws.DeploymentLost(), WorkflowState()),
        (WorkflowState(cycling=True), ws.Idle(), WorkflowState()),
        (
            WorkflowState(cycling=True),
            STEP,
            WorkflowState(cycling=True, rolling=STEP),
        ),
        (WorkflowState(), STEP, WorkflowState()),  # no cycle runs: not its rollout
        (WorkflowState(cycling=True, rolling=STEP), ws.Idle(), WorkflowState()),
        (
            WorkflowState(rolling=STEP, pending=Pending(reasons=("change",))),
            CycleBegan(Pending(reasons=("change",)), Pending()),
            WorkflowState(cycle=1, cycling=True),
        ),
        (WorkflowState(), ws.Status("error", "bad"), WorkflowState(status="error", detail="bad")),
        (
            WorkflowState(status="error", detail="bad"),
            ws.Status("watching"),
            WorkflowState(status="watching"),
        ),
    ],
)
def test_actions(before: WorkflowState, action: ws.Action, after: WorkflowState) -> None:
    assert reduce(before, action) == after


def test_a_cycles_end_ends_its_rollout() -> None:
    state = WorkflowState(cycling=True, rolling=STEP)
    after = reduce(state, CycleEnded("failed", deployment(), None))
    assert after.rolling is None and after.cycling


@pytest.mark.parametrize(
    ("state", "note"),
    [
        (WorkflowState(), None),
        (WorkflowState(cycle=2, cycling=True), None),  # before its rollout: nothing to follow
        (WorkflowState(cycle=2, rolling=STEP), None),  # no cycle runs
        (
            WorkflowState(cycle=2, cycling=True, rolling=STEP),
            "quit during cycle 2's rollout (pod p2, last: started); the cluster goes on "
            "with it, unfollowed",
        ),
        (
            WorkflowState(
                cycle=3, cycling=True, rolling=ws.RolloutStepped("p3", "waiting", "FailedMount: x")
            ),
            "quit during cycle 3's rollout (pod p3, last: waiting: FailedMount: x); the "
            "cluster goes on with it, unfollowed",
        ),
        (WorkflowState(cycle=2, cycling=True, rolling=ws.RolloutStepped("p2", "ready")), None),
        (WorkflowState(cycle=2, cycling=True, rolling=ws.RolloutStepped("p2", "failed")), None),
    ],
)
def test_what_quitting_leaves_behind(state: WorkflowState, note: str | None) -> None:
    assert ws.quit_note(state) == note


def test_an_action_leaves_the_state_it_was_given_alone() -> None:
    before = WorkflowState(pending=Pending(reasons=("change",)))
    reduce(before, ws.RetryJoined())
    assert before.pending == Pending(reasons=("change",))


# --- a cycle's end --------------------------------------------------------------------------


def test_ready_serves_the_new_pod_and_clears_the_failure(bundles: tuple[Bundle, Bundle]) -> None:
    old, new = bundles
    before = WorkflowState(deployed=old, serving="p1", failed_hash="h0")
    after = reduce(before, CycleEnded("ready", deployment("h2"), new, "p2"))
    assert (after.serving, after.failed_hash) == ("p2", None)
    assert (after.deployed, after.previous_deployed) == (new, old)
    assert after.known == deployment("h2")


def test_a_failed_rollout_keeps_what_serves_and_names_the_failed_template(
    bundles: tuple[Bundle, Bundle],
) -> None:
    old, new = bundles
    before = WorkflowState(deployed=old, serving="p1")
    after = reduce(before, CycleEnded("failed", deployment("h2"), new, "p2"))
    assert (after.serving, after.failed_hash) == ("p1", "h2")
    assert (after.deployed, after.previous_deployed) == (old, None)
    assert after.known == deployment("h2")


def test_a_superseded_rollout_changes_nothing_that_serves(bundles: tuple[Bundle, Bundle]) -> None:
    old, new = bundles
    before = WorkflowState(deployed=old, serving="p1", failed_hash="h0")
    after = reduce(before, CycleEnded("superseded", deployment("h9"), new, "p3"))
    assert (after.serving, after.failed_hash, after.deployed) == ("p1", "h0", old)
    assert after.known == deployment("h9")


def test_unchanged_keeps_the_previous_deploy_and_takes_the_serving_pod(
    bundles: tuple[Bundle, Bundle],
) -> None:
    old, new = bundles
    before = WorkflowState(deployed=old, previous_deployed=None, serving="p1", failed_hash="h")
    after = reduce(before, CycleEnded("unchanged", deployment(), new, "p7"))
    assert (after.deployed, after.previous_deployed) == (new, None)
    assert (after.serving, after.failed_hash) == ("p7", "h")


@pytest.mark.parametrize("outcome", ["applied", "unchanged"])
def test_without_a_rollout_the_pod_that_serves_is_taken(outcome: str) -> None:
    after = reduce(WorkflowState(serving="p1"), CycleEnded(outcome, deployment(), None, "p2"))
    assert after.serving == "p2"
    after = reduce(WorkflowState(serving="p1"), CycleEnded(outcome, deployment(), None, ""))
    assert after.serving == "p1"


def test_applied_is_a_deploy(bundles: tuple[Bundle, Bundle]) -> None:
    old, new = bundles
    after = reduce(WorkflowState(deployed=old), CycleEnded("applied", deployment(), new, ""))
    assert (after.deployed, after.previous_deployed) == (new, old)


def test_a_follow_only_cycle_deploys_nothing() -> None:
    after = reduce(WorkflowState(), CycleEnded("ready", deployment(), None, "p2"))
    assert (after.deployed, after.serving) == (None, "p2")


# --- decisions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("paused", "reason", "wakes"),
    [
        (False, "change", True),
        (False, "rollback", True),
        (True, "change", False),
        (True, "rollback", False),
        (True, "recovered", False),
        (True, "start", True),
        (True, "redeploy", True),
    ],
)
def test_what_wakes_the_worker(paused: bool, reason: str, wakes: bool) -> None:
    assert ws.wakes(WorkflowState(paused=paused), reason) is wakes


SAVE = Pending(frozenset({"a.ts"}), ("change",), False, False, None, 5.0)
ROLLBACK = Pending(frozenset(), ("rollback",), True, False, 3)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (WorkflowState(), None),
        (WorkflowState(pending=Pending(frozenset({"a.ts"}))), None),  # no reason: no work
        (WorkflowState(pending=SAVE), CycleBegan(SAVE, Pending())),
        (WorkflowState(pending=SAVE, paused=True), None),
        # paused: `r` and the first deploy go on
        (
            WorkflowState(pending=replace(SAVE, force=True), paused=True),
            CycleBegan(replace(SAVE, force=True), Pending()),
        ),
        (
            WorkflowState(pending=replace(SAVE, reasons=("start", "change")), paused=True),
            CycleBegan(replace(SAVE, reasons=("start", "change")), Pending()),
        ),
        (WorkflowState(pending=ROLLBACK), CycleBegan(ROLLBACK, Pending())),
        # a rollback goes first and alone; the saves that came with it wait
        (
            WorkflowState(
                pending=Pending(
                    frozenset({"a.ts"}), ("change", "rollback", "change"), True, False, 3, 5.0
                )
            ),
            CycleBegan(ROLLBACK, Pending(frozenset({"a.ts"}), ("change", "change"), False, False)),
        ),
        (
            WorkflowState(pending=Pending(frozenset(), ("pod gone", "rollback"), True, True, 2)),
            CycleBegan(
                Pending(frozenset(), ("rollback",), True, False, 2),
                Pending(frozenset(), ("pod gone",), False, True),
            ),
        ),
    ],
)
def test_what_the_next_cycle_takes(state: WorkflowState, expected: CycleBegan | None) -> None:
    assert ws.next_cycle(state) == expected


@pytest.mark.parametrize(
    ("state", "more"),
    [
        (WorkflowState(), False),
        (WorkflowState(pending=SAVE), True),
        (WorkflowState(pending=SAVE, paused=True), False),
    ],
)
def test_whether_the_worker_goes_on(state: WorkflowState, more: bool) -> None:
    assert ws.more_work(state) is more


@pytest.mark.parametrize(
    ("work", "reason"),
    [
        (Pending(reasons=("start",)), "start"),
        (Pending(reasons=("change", "change")), "change"),
        (Pending(reasons=("recovered", "change")), "change"),
        (Pending(reasons=("change", "redeploy")), "redeploy"),
        (Pending(reasons=("pod p was deleted",)), "pod p was deleted"),
        (Pending(reasons=("rollback", "redeploy"), rollback=7), "rollback r7"),
        (ROLLBACK, "rollback r3"),
    ],
)
def test_the_reason_a_cycle_is_shown_with(work: Pending, reason: str) -> None:
    assert ws.cycle_reason(work) == reason


@pytest.mark.parametrize(
    ("work", "pending", "joins"),
    [
        (SAVE, SAVE, True),
        (SAVE, Pending(), False),
        (ROLLBACK, SAVE, False),  # not into a rollback
        (SAVE, ROLLBACK, False),  # a rollback asked for meanwhile goes after
    ],
)
def test_what_joins_a_retried_cycle(work: Pending, pending: Pending, joins: bool) -> None:
    assert ws.joins_retry(work, pending) is joins


@pytest.mark.parametrize(
    ("cycle", "outcome"),
    [
        (CycleResult(applied=False, restarted=False), "unchanged"),
        (CycleResult(applied=True, restarted=False), "applied"),
        (CycleResult(True, True, RolloutResult(ok=True, pod="p")), "ready"),
        (CycleResult(False, True, RolloutResult(ok=True, pod="p")), "ready"),
        (CycleResult(True, True, RolloutResult(ok=False)), "failed"),
        (CycleResult(True, True, RolloutResult(ok=False, superseded_by="kubectl")), "superseded"),
        (CycleResult(True, True, RolloutResult(ok=True, superseded_by="kubectl")), "superseded"),
    ],
)
def test_a_cycles_outcome(cycle: CycleResult, outcome: str) -> None:
    assert ws.outcome_of(cycle) == outcome


@pytest.mark.parametrize(
    ("outcome", "recorded", "status"),
    [
        ("ready", True, ("watching", "")),
        ("unchanged", True, ("watching", "")),
        ("applied", False, ("watching", "")),
        ("superseded", False, ("watching", "")),
        ("failed", False, ("error", "the new pod failed; the previous one keeps running")),
    ],
)
def test_after_a_cycle(outcome: str, recorded: bool, status: tuple[str, str]) -> None:
    assert ws.records(outcome) is recorded
    assert ws.status_after(outcome) == status


@pytest.mark.parametrize(
    ("status", "detail", "shown"),
    [
        ("watching", "", False),  # the same state again says nothing
        ("watching", "revision 2 is live", True),  # a new detail is said
        ("error", "", True),
        ("paused", "1 changed file(s) wait", True),
    ],
)
def test_which_states_are_said(status: str, detail: str, shown: bool) -> None:
    assert ws.shows_status(WorkflowState(status="watching"), status, detail) is shown


@pytest.mark.parametrize(
    ("sent", "name", "old"),
    [
        ((), "hello", None),
        (("hello",), "hello", None),
        (("hello",), "hi", "hello"),
        (("hello", "hi"), "hey", "hi"),
        (("hello", "hi"), "hello", None),  # back to a name sent before: nothing new is left
    ],
)
def test_a_rename_leaves_the_last_name_behind(
    sent: tuple[str, ...], name: str, old: str | None
) -> None:
    assert ws.renamed_from(WorkflowState(names_sent=sent), name) == old


@pytest.mark.parametrize(
    ("serving", "failed", "live", "serves"),
    [
        ("p1", "h2", "h2", True),
        ("p1", "h2", "h3", False),  # the failed template is no longer live
        ("p1", "h2", None, False),  # no Deployment
        ("", "h2", "h2", False),  # nothing served before the failure
        ("p1", None, "h2", False),  # no rollout failed
    ],
)
def test_when_the_previous_replica_set_serves(
    serving: str, failed: str | None, live: str | None, serves: bool
) -> None:
    state = WorkflowState(serving=serving, failed_hash=failed)
    assert ws.serves_previous(state, live) is serves


IDLE = WorkflowState(known=deployment(), serving="p1", status="watching")
POD_DELETED = ("Pod", "DELETED", {"metadata": {"name": "p1"}})


@pytest.mark.parametrize(
    ("state", "seen", "expected"),
    [
        (IDLE, POD_DELETED, ws.ClusterChange("pod p1 was deleted")),
        (replace(IDLE, cycling=True), POD_DELETED, None),  # a cycle's own change
        (replace(IDLE, known=None), POD_DELETED, None),  # nothing deployed yet
        # the same change already waits for a cycle
        (replace(IDLE, pending=Pending(reasons=("pod p1 was deleted",))), POD_DELETED, None),
        (
            replace(IDLE, pending=Pending(reasons=("change",))),
            POD_DELETED,
            ws.ClusterChange("pod p1 was deleted"),
        ),
        (IDLE, ("Pod", "DELETED", {"metadata": {"name": "p0"}}), None),
        (
            IDLE,
            ("Deployment", "DELETED", deployment()),
            ws.ClusterChange("deployment hello was deleted", redeploy=True),
        ),
    ],
)
def test_what_the_idle_monitor_asks_for(
    state: WorkflowState, seen: tuple[str, str, dict[str, Any]], expected: ws.ClusterChange | None
) -> None:
    assert ws.seen_while_idle(state, *seen) == expected
