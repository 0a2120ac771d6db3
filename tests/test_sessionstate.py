"""The session's one state (devloop.sessionstate): every workflow's, changed in one place;
tables, pure, in milliseconds. tests/test_several.py runs several workflows in a session."""

from __future__ import annotations

import pytest

from devloop import workflowstate as ws
from devloop.sessionstate import SessionState, Store, reduce, to_clean_up
from devloop.workflowstate import WorkflowState


def test_an_action_changes_its_workflow_only() -> None:
    other = WorkflowState(paused=True)
    session = SessionState({"/a": WorkflowState(), "/b": other})
    after = reduce(session, "/a", ws.Named("a"))
    assert after.of("/a") == WorkflowState(names_sent=("a",))
    assert after.of("/b") is other
    assert session.of("/a") == WorkflowState()  # the session it was given is unchanged


def test_a_workflow_not_seen_yet_starts_from_the_empty_state() -> None:
    assert SessionState().of("/new") == WorkflowState()
    assert reduce(SessionState(), "/new", ws.Paused()).of("/new") == WorkflowState(paused=True)


@pytest.mark.parametrize(
    ("workflows", "cleaned"),
    [
        ({}, {}),
        ({"/a": WorkflowState()}, {}),  # never deployed: nothing to delete
        ({"/a": WorkflowState(names_sent=("a",))}, {"/a": ("a",)}),
        (
            {
                "/a": WorkflowState(names_sent=("a", "a2")),  # renamed: both names
                "/b": WorkflowState(),
                "/c": WorkflowState(names_sent=("c",), cycling=True),  # mid-rollout too
            },
            {"/a": ("a", "a2"), "/c": ("c",)},
        ),
    ],
)
def test_what_cleanup_on_exit_deletes(
    workflows: dict[str, WorkflowState], cleaned: dict[str, tuple[str, ...]]
) -> None:
    assert to_clean_up(SessionState(workflows)) == cleaned


def test_the_store_keeps_every_workflow_it_was_told_of() -> None:
    store = Store()
    assert store.dispatch("/a", ws.Named("a")) == WorkflowState(names_sent=("a",))
    assert store.dispatch("/b", ws.Paused()) == WorkflowState(paused=True)
    assert store.dispatch("/a", ws.Checked()) == WorkflowState(names_sent=("a",), checked=True)
    assert store.state == SessionState(
        {"/a": WorkflowState(names_sent=("a",), checked=True), "/b": WorkflowState(paused=True)}
    )
