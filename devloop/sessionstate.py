"""The session's one state: every workflow's (devloop.workflowstate), by its directory,
changed in one place (Tilt's store is the model).

Each workflow's loop dispatches its actions here and reads its state from here; what the
session decides over all of them (what --cleanup-on-exit deletes) is a pure function of
it, tested by tables (tests/test_sessionstate.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from devloop import workflowstate as ws
from devloop.workflowstate import WorkflowState


@dataclass(frozen=True)
class SessionState:
    workflows: Mapping[str, WorkflowState] = field(default_factory=dict)

    def of(self, key: str) -> WorkflowState:
        return self.workflows.get(key) or WorkflowState()


def reduce(session: SessionState, key: str, action: ws.Action) -> SessionState:
    """The session after one workflow's action: the others are the same objects."""
    after = ws.reduce(session.of(key), action)
    return SessionState({**session.workflows, key: after})


def to_clean_up(session: SessionState) -> dict[str, tuple[str, ...]]:
    """--cleanup-on-exit: each workflow's names the session deployed under (or tried to),
    whether or not their rollouts finished; workflows that sent none are left out."""
    return {key: state.names_sent for key, state in session.workflows.items() if state.names_sent}


class Store:
    """Holds the session's state; `dispatch` is the only way it changes."""

    def __init__(self) -> None:
        self.state = SessionState()

    def dispatch(self, key: str, action: ws.Action) -> WorkflowState:
        self.state = reduce(self.state, key, action)
        return self.state.of(key)
