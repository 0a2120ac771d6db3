"""Property tests over generated file sets: a valid ConfigMap whose items cover exactly its
keys and whose values are the files' bytes, or clear problems; never an exception."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devloop import names
from devloop.problems import Problem
from devloop.render import Bundle, render
from tests.helpers import MINIMAL_WORKFLOW, write_tree

segment = st.text(alphabet=st.sampled_from("abcXYZ019-_. é"), min_size=1, max_size=12).filter(
    lambda s: s not in {".", ".."}
)
rel_path = st.lists(segment, min_size=1, max_size=3).map(lambda parts: "/".join(parts))
content = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=60),
)
file_sets = st.dictionaries(rel_path, content, max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(file_sets, st.booleans())
def test_render_gives_a_consistent_bundle_or_problems(
    files: dict[str, str | bytes], with_ts_suffix: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "wf"
        tree: dict[str, str | bytes] = {
            "workflow.yaml": MINIMAL_WORKFLOW,
            "nodes/fetch.ts": "export default 1;\n",
        }
        for rel, body in files.items():
            path = "nodes/" + rel + (".ts" if with_ts_suffix else "")
            if any(path.startswith(p + "/") for p in tree) or any(
                p.startswith(path + "/") for p in tree
            ):
                continue  # a file and a directory of the same name cannot both exist
            tree[path] = body
        try:
            write_tree(root, tree)
        except OSError:
            return  # e.g. a name the filesystem refuses
        result = render(root)
        if isinstance(result, Bundle):
            data = result.config_map["data"]
            items = result.deployment["spec"]["template"]["spec"]["volumes"][0]["configMap"][
                "items"
            ]
            assert sorted(i["key"] for i in items) == sorted(data)
            for item in items:
                on_disk = (root / item["path"]).read_bytes()
                assert data[item["key"]].encode("utf-8") == on_disk
                assert names.config_map_key(item["key"]) == []
            deployed = {i["path"] for i in items}
            expected = {
                p
                for p in tree
                if p == "workflow.yaml"
                or (p.endswith(".ts") and not any(part.startswith(".") for part in p.split("/")))
            }
            assert deployed == expected
        else:
            assert result, "a failed render must say why"
            for problem in result:
                assert isinstance(problem, Problem)
                assert problem.file.startswith(str(root))
                assert problem.message
