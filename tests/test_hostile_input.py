"""No input takes rendering down or hangs it: any directory content gives a Bundle or
problems, never an exception, never a blocked read; secrets are read as the engine reads
them and never leave through the ConfigMap or a message."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devloop.render import Bundle, RenderOptions, render
from tests.helpers import minimal, write_tree


def rendered(root: Path) -> Bundle | list[str]:
    result = render(root, RenderOptions())
    return result if isinstance(result, Bundle) else [str(p) for p in result if p.is_error]


def errors(root: Path) -> list[str]:
    result = rendered(root)
    assert not isinstance(result, Bundle), "expected problems"
    return result


def secret_data(root: Path) -> dict[str, bytes]:
    result = rendered(root)
    assert isinstance(result, Bundle), result
    assert result.secret is not None
    return {k: base64.b64decode(v) for k, v in result.secret["data"].items()}


# --- secrets as the engine reads them --------------------------------------------------------


def test_secret_values_are_stored_as_the_engine_reads_them(tmp_path: Path) -> None:
    text = (
        "token: tok\n"
        'quoted: "a b"\n'
        "pin: 0123\n"
        "flag: yes\n"
        "empty:\n"
        "nested: {user: u, port: 5432, list: [1, two]}\n"
        "items: [a, b]\n"
        "blob: !!binary aGVsbG8gd29ybGQ=\n"
        "when: 2024-01-01\n"
    )
    data = secret_data(write_tree(minimal(tmp_path), {".secrets.yaml": text}))
    assert data == {
        "token": b"tok",
        "quoted": b"a b",
        "pin": b"0123",
        "flag": b"yes",
        "empty": b"",
        "nested": b'{"user":"u","port":5432,"list":[1,"two"]}',
        "items": b'["a","b"]',
        "blob": b"hello world",
        "when": b"2024-01-01",
    }


def test_secrets_dir_files_are_stored_as_they_are(tmp_path: Path) -> None:
    write_tree(minimal(tmp_path), {".secrets/a": b"\x00\xffraw\n", ".secrets/b": '"quoted"'})
    assert secret_data(tmp_path) == {"a": b"\x00\xffraw\n", "b": b'"quoted"'}


@pytest.mark.parametrize(
    "text",
    ["a: !net x\n", "a: !!python/object:os.system x\n", "a: !!python/name:os.system\n"],
)
def test_tags_in_secrets_are_refused_without_quoting(tmp_path: Path, text: str) -> None:
    (message,) = errors(write_tree(minimal(tmp_path), {".secrets.yaml": text}))
    assert message.startswith(f"{tmp_path}/.secrets.yaml:1:4: unknown tag")
    assert "os.system" not in message.split("unknown tag")[0]


def test_deep_secrets_are_refused(tmp_path: Path) -> None:
    text = "a: " + "[" * 900 + "]" * 900 + "\n"
    (message,) = errors(write_tree(minimal(tmp_path), {".secrets.yaml": text}))
    assert "nested more than 64 levels deep" in message


def test_billion_laughs_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    text = "\n".join(lines) + "\n"
    assert len(text) < 3000
    (message,) = errors(write_tree(minimal(tmp_path), {".secrets.yaml": text}))
    assert "expands to more than 100,000 values" in message


def test_a_long_anchor_repeated_by_aliases_is_refused_by_its_expanded_size(
    tmp_path: Path,
) -> None:
    """One 8,000-character anchor and 99,000 aliases (305 KB, under the value count) would
    ask for ~792 MB of JSON (issue 24 §5)."""
    lines = [f"a: &x {'y' * 8000}", "b: [" + ",".join(["*x"] * 99_000) + "]"]
    text = "\n".join(lines) + "\n"
    assert len(text) < 310_000
    (message,) = errors(write_tree(minimal(tmp_path), {".secrets.yaml": text}))
    assert message.endswith(
        ".secrets.yaml:1:1: expands to more than 2 MiB of text (aliases repeat what they name); "
        "write the values out"
    ), message


def test_a_secrets_yaml_that_is_a_directory(tmp_path: Path) -> None:
    (minimal(tmp_path) / ".secrets.yaml").mkdir()
    (message,) = errors(tmp_path)
    assert message == f"{tmp_path}/.secrets.yaml: is a directory, not a regular file"


@pytest.mark.parametrize("where", [".secrets.yaml", ".secrets/token"])
def test_secrets_that_are_fifos_are_refused_without_blocking(tmp_path: Path, where: str) -> None:
    minimal(tmp_path)
    (tmp_path / where).parent.mkdir(exist_ok=True)
    os.mkfifo(tmp_path / where)
    (message,) = errors(tmp_path)
    assert "is a named pipe (FIFO), not a regular file" in message


@pytest.mark.skipif(os.geteuid() != 0, reason="creating a device node needs root")
def test_a_device_file_is_never_read(tmp_path: Path) -> None:
    minimal(tmp_path)
    os.mknod(tmp_path / ".secrets.yaml", stat.S_IFCHR | 0o600, os.makedev(1, 5))  # /dev/zero
    (message,) = errors(tmp_path)
    assert message == f"{tmp_path}/.secrets.yaml: is a device, not a regular file"


@pytest.mark.parametrize("target", ["/dev/zero", "/etc/passwd"])
def test_secret_links_leaving_the_directory_are_refused(tmp_path: Path, target: str) -> None:
    minimal(tmp_path)
    (tmp_path / ".secrets").mkdir()
    (tmp_path / ".secrets" / "creds").symlink_to(target)
    (message,) = errors(tmp_path)
    assert message.startswith(f"{tmp_path}/.secrets/creds: is a link to {target}, outside")


def test_secrets_yaml_linked_to_dev_zero_is_not_read(tmp_path: Path) -> None:
    (minimal(tmp_path) / ".secrets.yaml").symlink_to("/dev/zero")
    (message,) = errors(tmp_path)
    assert "outside the workflow directory" in message


def test_oversized_secrets_are_refused_by_size_before_reading(tmp_path: Path) -> None:
    with open(minimal(tmp_path) / ".secrets.yaml", "wb") as f:
        f.truncate(50 * 1024 * 1024)  # sparse: 50 MB that cost nothing to create
    (message,) = errors(tmp_path)
    assert "is 52,428,800 bytes, more than the 1,048,576 bytes allowed" in message


def render_unprivileged(root: Path) -> list[str]:
    """`pdwatch ROOT --render`'s stderr lines, run without the capabilities that let root
    read any file (setpriv drops them), so that modes are obeyed also in CI as root."""
    drop = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
    proc = subprocess.run(
        [
            *(drop if os.geteuid() == 0 else []),
            sys.executable,
            "-m",
            "devloop",
            str(root),
            "--render",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1, proc.stdout
    return proc.stderr.splitlines()


def test_an_unreadable_secret_file(tmp_path: Path) -> None:
    write_tree(minimal(tmp_path), {".secrets/token": "x"})
    (tmp_path / ".secrets" / "token").chmod(0)
    assert render_unprivileged(tmp_path)[0].endswith(
        "cannot be read: Permission denied; secrets must be files, one per key"
    )


def test_an_unreadable_secrets_folder(tmp_path: Path) -> None:
    write_tree(minimal(tmp_path), {".secrets/token": "x"})
    (tmp_path / ".secrets").chmod(0)
    lines = render_unprivileged(tmp_path)
    assert lines[0] == f"error: {tmp_path}/.secrets: cannot be listed: Permission denied", lines


def test_an_unreadable_nodes_folder(tmp_path: Path) -> None:
    (minimal(tmp_path) / "nodes").chmod(0)
    lines = render_unprivileged(tmp_path)
    assert (
        f"error: {tmp_path}/nodes: cannot be listed: Permission denied; its code is not deployed"
        in lines
    )
    assert any("nodes/fetch.ts cannot be reached: Permission denied" in line for line in lines)
    assert not any("does not exist" in line for line in lines)


def test_an_unreadable_workflow_directory(tmp_path: Path) -> None:
    (minimal(tmp_path / "wf")).chmod(0o600)  # readable, not searchable
    lines = render_unprivileged(tmp_path / "wf")
    assert f"error: {tmp_path}/wf: cannot be read: Permission denied" in lines, lines


def test_a_node_path_that_is_a_link_loop(tmp_path: Path) -> None:
    minimal(tmp_path)
    (tmp_path / "nodes" / "fetch.ts").unlink()
    (tmp_path / "nodes" / "fetch.ts").symlink_to("fetch.ts")
    messages = errors(tmp_path)
    assert any("Too many levels of symbolic links" in m for m in messages), messages


def test_a_broken_secret_link(tmp_path: Path) -> None:
    minimal(tmp_path)
    (tmp_path / ".secrets").mkdir()
    (tmp_path / ".secrets" / "token").symlink_to(tmp_path / "gone")
    (message,) = errors(tmp_path)
    assert "is a broken link" in message


# --- secrets never reach the ConfigMap -------------------------------------------------------


def test_a_node_linked_to_secrets_yaml_is_refused(tmp_path: Path) -> None:
    write_tree(minimal(tmp_path), {".secrets.yaml": "token: ghp_abc\n"})
    (tmp_path / "nodes" / "leak.ts").symlink_to(tmp_path / ".secrets.yaml")
    (message,) = errors(tmp_path)
    assert message.startswith(f"{tmp_path}/nodes/leak.ts: leads to the workflow's secrets")


def test_a_node_linked_into_the_secrets_dir_is_refused(tmp_path: Path) -> None:
    write_tree(minimal(tmp_path), {".secrets/token": "ghp_abc"})
    (tmp_path / "nodes" / "leak.ts").symlink_to("../.secrets/token")
    (message,) = errors(tmp_path)
    assert "leads to the workflow's secrets" in message


def test_a_node_hard_linked_to_a_secret_is_refused(tmp_path: Path) -> None:
    write_tree(minimal(tmp_path), {".secrets.yaml": "token: ghp_abc\n"})
    os.link(tmp_path / ".secrets.yaml", tmp_path / "nodes" / "leak.ts")
    (message,) = errors(tmp_path)
    assert "leads to the workflow's secrets" in message


def test_errors_about_secrets_never_carry_the_source_line(tmp_path: Path) -> None:
    write_tree(minimal(tmp_path), {".secrets.yaml": "token: [ghp_abc123\n"})
    result = render(tmp_path, RenderOptions())
    assert isinstance(result, list)
    assert all(p.source is None for p in result)
    assert all("ghp_abc123" not in str(p) for p in result)


# --- the property: any tree renders to a Bundle or problems, never raises, never blocks ------

VALID_WORKFLOW = (
    "name: w\nversion: '1.0'\ntriggers: [{type: manual}]\n"
    "nodes: {a: {path: ./nodes/a.ts}, b: {path: ./nodes/lib/b.ts}}\nedges: []\n"
)
NAMES = st.sampled_from(
    ["workflow.yaml", "nodes/a.ts", "nodes/lib/b.ts", ".secrets.yaml", ".secrets/k", "nodes/c.ts"]
)
YAML_SHAPES = st.sampled_from(
    [
        "name: w\nversion: '1.0'\ntriggers: [{type: manual}]\nnodes: {a: {path: ./nodes/a.ts}}\n"
        "edges: []\n",
        "a: !!python/object:os.system x\n",
        "a: &x [*x]\n",
        "[" * 200 + "]" * 200,
        "- - - - - - - -\n",
        "a: {b: [c, {d: e}]}\n",
        "? [a]\n: b\n",
        "\t bad: indent\n",
        "k: 'unterminated\n",
        "",
        "\x00\x01",
        "nodes: !net x\n",
    ]
)
CONTENT = st.one_of(YAML_SHAPES, st.text(max_size=300), st.binary(max_size=300))
KINDS = st.sampled_from(["file", "fifo", "dir", "link-in", "link-out", "link-loop", "unreadable"])


@settings(
    max_examples=60,
    deadline=5000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(st.tuples(NAMES, KINDS, CONTENT), max_size=6), st.booleans())
def test_any_tree_gives_a_bundle_or_problems(
    tmp_path_factory: pytest.TempPathFactory,
    entries: list[tuple[str, str, object]],
    valid_workflow_first: bool,
) -> None:
    root = tmp_path_factory.mktemp("tree")
    if valid_workflow_first:  # so that node paths are checked against what was made
        write_tree(root, {"workflow.yaml": VALID_WORKFLOW})
    made: set[str] = set()
    for rel, kind, content in entries:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel in made:
            continue
        made.add(rel)
        if os.path.lexists(path):  # the valid workflow.yaml written first
            path.unlink()
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "dir":
            path.mkdir()
        elif kind == "link-in":
            path.symlink_to(root / "workflow.yaml")
        elif kind == "link-out":
            path.symlink_to("/dev/zero")
        elif kind == "link-loop":
            path.symlink_to(path)
        else:
            data = content.encode("utf-8") if isinstance(content, str) else content
            assert isinstance(data, bytes)
            path.write_bytes(data)
            if kind == "unreadable":
                path.chmod(0)
    result = render(root, RenderOptions())
    assert isinstance(result, (Bundle, list))


@pytest.mark.parametrize(
    ("where", "text", "expected"),
    [
        ("workflow.yaml", None, "workflow.yaml:2:10: version '9999"),
        (".secrets.yaml", "2024-01-01: x\n? !!binary aGVsbG8=\n: y\n", ".secrets.yaml:2:3: "),
        (
            ".secrets.yaml",
            "? [a, b]\n: y\n",
            ".secrets.yaml:1:3: secret names must be plain strings",
        ),
    ],
    ids=["400-digit-version", "date-and-binary-keys", "sequence-key"],
)
def test_odd_values_are_problems_with_file_and_line(
    tmp_path: Path, where: str, text: str | None, expected: str
) -> None:
    """An unquoted 400-digit version, a date or binary key in the secrets: each a problem
    with its file and line, never a traceback (issue 24 §8)."""
    root = minimal(tmp_path)
    if text is None:
        workflow = root / "workflow.yaml"
        workflow.write_text(workflow.read_text().replace('"1.0"', "9" * 400))
    else:
        (root / where).write_text(text)
    problems = errors(root)
    assert any(expected in p for p in problems), problems
