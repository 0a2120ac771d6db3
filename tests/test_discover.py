"""Which directories a command line names as workflows (devloop.discover), and the
rule that two workflows of a session may not deploy one name to one namespace."""

from __future__ import annotations

from pathlib import Path

import pytest

from devloop.daemon import name_clash
from devloop.discover import NoWorkflows, below, labels, workflow_dirs
from tests.test_several import named


def test_a_parent_stands_for_every_workflow_below_it(tmp_path: Path) -> None:
    for relative in ("b/x", "a", "deep/er/still", ".hidden/w", "node_modules/m", "a/nested"):
        (tmp_path / relative).mkdir(parents=True)
        (tmp_path / relative / "workflow.yaml").write_text("name: w\n")
    (tmp_path / "a" / "nodes").mkdir()
    (tmp_path / "loop").symlink_to(tmp_path)  # a link is not entered
    (tmp_path / "too" / "deep" / "for" / "the" / "walk").mkdir(parents=True)
    (tmp_path / "too/deep/for/the/walk/workflow.yaml").write_text("name: w\n")
    assert below(tmp_path) == [tmp_path / "a", tmp_path / "b" / "x", tmp_path / "deep/er/still"]


def test_each_dir_as_given_else_the_workflows_below_else_itself(tmp_path: Path) -> None:
    one = named(tmp_path / "family", "collector")
    two = named(tmp_path / "family", "reporter")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert workflow_dirs([tmp_path / "family"]) == [one, two]
    # a workflow named twice (as itself and below its parent) is watched once
    assert workflow_dirs([two, tmp_path / "family"]) == [two, one]
    # nothing there yet: a workflow still to be written, as for one directory
    assert workflow_dirs([empty]) == [empty]
    missing = workflow_dirs([one, tmp_path / "nope"])
    assert isinstance(missing, NoWorkflows)
    assert missing.message == f"{tmp_path / 'nope'} does not exist; give a workflow directory"


def test_two_workflows_of_one_name_in_one_namespace_are_refused() -> None:
    a, b, c = Path("a"), Path("b"), Path("c")
    assert name_clash([(a, "hello", "default"), (b, "hello", "other")]) is None
    assert name_clash([(a, "hello", "default"), (b, "x", "default"), (c, "hello", "default")]) == (
        "a and c both deploy workflow 'hello' to namespace default: rename one (name: in its "
        "workflow.yaml) or watch them apart"
    )


def test_files_and_deep_trees(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory\n")
    for relative in ("l1/l2/l3/w4", "m1/w2", "z"):
        (tmp_path / relative).mkdir(parents=True)
        (tmp_path / relative / "workflow.yaml").write_text("name: w\n")
    (tmp_path / "n1/n2/n3/n4/w5").mkdir(parents=True)  # five levels: beyond the walk
    (tmp_path / "n1/n2/n3/n4/w5/workflow.yaml").write_text("name: w\n")
    assert below(tmp_path) == [tmp_path / "l1/l2/l3/w4", tmp_path / "m1/w2", tmp_path / "z"]
    not_dir = workflow_dirs([tmp_path / "a-file"])
    assert isinstance(not_dir, NoWorkflows)
    assert not_dir.message == f"{tmp_path / 'a-file'} is not a directory; give a workflow directory"
    # a workflow given as such is itself, not what may be below it
    (tmp_path / "z" / "sub").mkdir()
    (tmp_path / "z" / "sub" / "workflow.yaml").write_text("name: s\n")
    assert workflow_dirs([tmp_path / "z"]) == [tmp_path / "z"]


@pytest.mark.parametrize(
    ("placed", "expected"),
    [
        ([("a/hello", "hello"), ("b/digest", "digest")], ["hello", "digest"]),
        # one name in two namespaces: told apart by their directories
        (
            [("team-a/greeter", "greeter"), ("team-b/greeter", "greeter")],
            ["greeter (team-a/greeter)", "greeter (team-b/greeter)"],
        ),
        (
            [("x/one", "greeter"), ("y/two", "greeter"), ("z/hello", "hello")],
            ["greeter (one)", "greeter (two)", "hello"],
        ),
        (
            [("p/a/wf", "wf"), ("q/a/wf", "wf")],
            ["wf (p/a/wf)", "wf (q/a/wf)"],
        ),
    ],
)
def test_labels_tell_workflows_of_one_name_apart(
    tmp_path: Path, placed: list[tuple[str, str]], expected: list[str]
) -> None:
    assert labels([(tmp_path / d, name) for d, name in placed]) == expected
