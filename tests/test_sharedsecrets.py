"""`$shared.<name>` secrets of the Tentacular format, resolved as the reference resolves
them (TENTACULAR.md §5.2), each refusal naming what is wrong and never a value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devloop.render import Bundle, RenderOptions, render
from devloop.sharedsecrets import go_json, read_shared_secrets, repository_root, shared_value
from tests.helpers import write_tree

NODE = 'import type { Context } from "tentacular";\nexport default async function run() {}\n'
WORKFLOW = (
    "name: wf\nversion: '1.0'\ntriggers:\n  - type: manual\nnodes:\n"
    "  a:\n    path: ./nodes/a.ts\nedges: []\n"
)


def repository(tmp_path: Path, shared: dict[str, str], secrets_yaml: str) -> Path:
    (tmp_path / ".git").mkdir()
    write_tree(tmp_path / ".secrets", dict(shared))
    return write_tree(
        tmp_path / "flows" / "wf",
        {"workflow.yaml": WORKFLOW, "nodes/a.ts": NODE, ".secrets.yaml": secrets_yaml},
    )


@pytest.mark.parametrize(
    ("content", "stored"),
    [
        ('{"token": "abc", "a": 1}', b'{"a":1,"token":"abc"}'),  # compact, keys sorted
        ('{"u": "<a&b>"}', b'{"u":"\\u003ca\\u0026b\\u003e"}'),  # Go's HTML escapes
        ('"quoted"', b"quoted"),  # a JSON string without its quotes
        ("[1, 2.50, true]", b"[1,2.5,true]"),
        ("12345678901234567890", b"12345678901234567000"),  # through float64
        ("1e21", b"1e+21"),
        ("  plain token \n", b"plain token"),  # not JSON: trimmed text
        ("{not json", b"{not json"),
    ],
)
def test_a_shared_file_is_stored_as_the_reference_stores_it(content: str, stored: bytes) -> None:
    assert shared_value(content.encode()) == stored


def test_go_json_matches_json_dumps_for_plain_values() -> None:
    value = {"b": [1, "x", None, False], "a": {"c": "d"}}
    assert go_json(value) == json.dumps(value, sort_keys=True, separators=(",", ":"))


def test_references_resolve_from_the_repository_root(tmp_path: Path) -> None:
    directory = repository(
        tmp_path,
        {"github": '{"token": "ghp_1"}', "team/slack": "https://hooks\n"},
        "# comments are allowed\ngithub: $shared.github\nslack: '$shared.team/slack'\n",
    )
    assert repository_root(directory) == tmp_path
    data, problems = read_shared_secrets(directory, "wf")
    assert problems == []
    assert data == {"github": b'{"token":"ghp_1"}', "slack": b"https://hooks"}
    bundle = render(directory, RenderOptions())
    assert isinstance(bundle, Bundle), bundle
    assert bundle.format.reason == ".secrets.yaml uses $shared references"
    assert bundle.secret is not None and set(bundle.secret["data"]) == {"github", "slack"}


def test_a_go_mod_is_a_root_too(tmp_path: Path) -> None:
    write_tree(tmp_path, {"go.mod": "module x\n", ".secrets/k": "v"})
    directory = write_tree(tmp_path / "wf", {".secrets.yaml": "k: $shared.k\n"})
    assert read_shared_secrets(directory, "wf") == ({"k": b"v"}, [])


def test_a_direct_value_is_refused_with_the_references_words(tmp_path: Path) -> None:
    directory = repository(tmp_path, {}, "github: ghp_live_secret\nslack:\n  url: x\n")
    data, problems = read_shared_secrets(directory, "wf")
    assert data is None
    assert [(p.line, p.message.split(";")[0]) for p in problems] == [
        (1, 'secret "github" has a direct value'),
        (3, 'secret "slack" has a direct value'),
    ]
    assert "all secrets must use $shared.<name> references (e.g. $shared.github)" in (
        problems[0].message
    )
    assert all("ghp_live_secret" not in str(p) and p.source is None for p in problems)


def test_a_missing_file_names_where_it_was_looked_for(tmp_path: Path) -> None:
    directory = repository(tmp_path, {}, "github: $shared.github\n")
    _, problems = read_shared_secrets(directory, "wf")
    assert [str(p) for p in problems] == [
        f'wf/.secrets.yaml:1:9: shared secret "$shared.github" referenced but not found at '
        f"{tmp_path}/.secrets/github"
    ]


def test_a_name_leaving_the_folder_is_refused(tmp_path: Path) -> None:
    write_tree(tmp_path, {"outside": "secret"})
    directory = repository(tmp_path, {}, "a: $shared.../outside\nb: $shared.\n")
    _, problems = read_shared_secrets(directory, "wf")
    assert [p.message for p in problems] == [
        'shared secret name "../outside" contains invalid path components',
        'shared secret name "" contains invalid path components',
    ]


def test_without_a_repository_root_it_is_an_error_not_the_literal_text(tmp_path: Path) -> None:
    """The reference stores `$shared.github` as the value when it finds no root, and every
    call with it fails at run time; pdwatch says why it cannot resolve it."""
    directory = write_tree(tmp_path / "wf", {".secrets.yaml": "github: $shared.github\n"})
    if repository_root(directory) is not None:
        pytest.skip(f"{tmp_path} is inside a repository ({repository_root(directory)})")
    _, problems = read_shared_secrets(directory, "wf")
    assert len(problems) == 1
    assert problems[0].message.startswith("$shared.github cannot be resolved: no folder at")
    assert "has a .git or a go.mod" in problems[0].message


def test_format_pipedreamer_deploys_values_written_in_the_file(tmp_path: Path) -> None:
    directory = repository(tmp_path, {}, "github:\n  token: abc\n")
    (directory / ".tentacular").mkdir()
    assert not isinstance(render(directory, RenderOptions()), Bundle)
    bundle = render(directory, RenderOptions(format="pipedreamer"))
    assert isinstance(bundle, Bundle), bundle
    assert bundle.secret is not None and set(bundle.secret["data"]) == {"github"}
