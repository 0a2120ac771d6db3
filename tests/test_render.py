"""Rendering a workflow directory: seed 000's scenarios, seed 002's objects, the limits."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
import yaml

from devloop.image import files_outside
from devloop.render import Bundle, RenderOptions, render
from devloop.yamlout import dump_all
from tests.helpers import FETCH_TS, MINIMAL_WORKFLOW, minimal, write_tree


def ok(root: Path, **options: object) -> Bundle:
    result = render(root, RenderOptions(**options))  # type: ignore[arg-type]
    assert isinstance(result, Bundle), [str(p) for p in result]
    return result


def errors(root: Path, **options: object) -> list[str]:
    result = render(root, RenderOptions(**options))  # type: ignore[arg-type]
    assert not isinstance(result, Bundle), "expected problems, got a Bundle"
    return [str(p) for p in result]


# --- seed 000: ConfigMap generation from workflow directory ------------------------------


def test_configmap_contains_workflow_yaml(tmp_path: Path) -> None:
    bundle = ok(minimal(tmp_path))
    assert bundle.config_map["data"]["workflow.yaml"] == MINIMAL_WORKFLOW


def test_configmap_contains_node_files_with_flattened_keys(tmp_path: Path) -> None:
    write_tree(tmp_path, {"nodes/summarize.ts": "export default () => 2;\n"})
    bundle = ok(minimal(tmp_path))
    data = bundle.config_map["data"]
    assert data["nodes__fetch.ts"] == FETCH_TS
    assert data["nodes__summarize.ts"] == "export default () => 2;\n"


def test_configmap_name_follows_convention(tmp_path: Path) -> None:
    assert ok(minimal(tmp_path)).config_map["metadata"]["name"] == "my-workflow-code"


def test_configmap_namespace(tmp_path: Path) -> None:
    bundle = ok(minimal(tmp_path), namespace="production")
    assert all(m["metadata"]["namespace"] == "production" for m in bundle.manifests())


def test_configmap_labels(tmp_path: Path) -> None:
    labels = ok(minimal(tmp_path)).config_map["metadata"]["labels"]
    assert labels == {
        "app.kubernetes.io/name": "my-workflow",
        "app.kubernetes.io/managed-by": "pipedreamer",
        "app.kubernetes.io/version": "1.0",
    }


def test_every_object_carries_the_version_label(tmp_path: Path) -> None:
    write_tree(tmp_path, {".secrets.yaml": "k: v\n"})
    text = MINIMAL_WORKFLOW.replace("- type: manual", "- type: cron\n    schedule: '@hourly'")
    bundle = ok(write_tree(minimal(tmp_path), {"workflow.yaml": text}))
    kinds = [m["kind"] for m in bundle.manifests()]
    assert kinds == ["Secret", "ConfigMap", "ConfigMap", "Service", "CronJob", "Deployment"]
    for m in bundle.manifests():
        assert m["metadata"]["labels"]["app.kubernetes.io/version"] == "1.0", m["kind"]


# --- seed 000: size validation ---------------------------------------------------------


KEYS = len("workflow.yaml") + len("nodes__fetch.ts") + len("nodes__big.ts")


def budget() -> int:
    """What nodes/big.ts may hold: the limit counts keys and values, as the API server
    counts a ConfigMap's 1 MiB (ValidateConfigMap)."""
    return 921_600 - KEYS - len(MINIMAL_WORKFLOW.encode()) - len(FETCH_TS.encode())


def test_data_within_limit(tmp_path: Path) -> None:
    write_tree(tmp_path, {"nodes/big.ts": "x" * budget()})
    bundle = ok(minimal(tmp_path))
    assert bundle.stored_bytes == 921_600
    assert bundle.code_bytes == 921_600 - KEYS


def test_data_exceeds_limit_states_actual_size(tmp_path: Path) -> None:
    write_tree(tmp_path, {"nodes/big.ts": "x" * (budget() + 1)})
    (message,) = errors(minimal(tmp_path))
    assert "exceeds ConfigMap size limit (900KB): total size is 921601 bytes" in message
    assert "nodes/big.ts" in message


def test_the_keys_count_toward_the_limit(tmp_path: Path) -> None:
    """Contents alone fit; with the ConfigMap keys the object would not."""
    write_tree(tmp_path, {"nodes/big.ts": "x" * (budget() + KEYS)})
    (message,) = errors(minimal(tmp_path))
    assert f"total size is {921_600 + KEYS} bytes" in message
    assert "ConfigMap keys" in message


def test_size_counts_utf8_bytes_not_characters(tmp_path: Path) -> None:
    write_tree(tmp_path, {"nodes/big.ts": "é" * (budget() // 2 + 1)})  # 2 bytes each
    (message,) = errors(minimal(tmp_path))
    assert "total size is 921601 bytes" in message or "total size is 921602 bytes" in message


# --- seed 000: only expected file types --------------------------------------------------


def test_non_ts_files_in_nodes_excluded(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "nodes/README.md": "# docs",
            "nodes/.gitkeep": "",
            "README.md": "x",
            ".secrets.yaml": "token: abc\n",
            "nodes/fetch.ts.swp": "x",
            "nodes/fetch.ts~": "x",
            "nodes/.#fetch.ts": "x",
            "nodes/4913": "",
            "nodes/.hidden/x.ts": "x",
            "nodes/node_modules/dep/index.ts": "x",
            "nodes/fetch.ts___jb_tmp___": "x",
        },
    )
    assert sorted(ok(minimal(tmp_path)).config_map["data"]) == ["nodes__fetch.ts", "workflow.yaml"]


def test_linked_folders_in_node_modules_and_hidden_folders_are_not_problems(
    tmp_path: Path,
) -> None:
    """pnpm fills node_modules with links to folders; they are not deployed, so not errors."""
    wf = minimal(tmp_path)
    write_tree(wf, {"store/pkg/index.ts": "x", "elsewhere/x.ts": "x"})
    os.makedirs(wf / "nodes" / "node_modules")
    os.symlink(wf / "store" / "pkg", wf / "nodes" / "node_modules" / "pkg")
    os.makedirs(wf / "nodes" / ".cache")
    os.symlink(wf / "elsewhere", wf / "nodes" / ".cache" / "linked")
    assert sorted(ok(wf).config_map["data"]) == ["nodes__fetch.ts", "workflow.yaml"]


def test_a_linked_node_modules_is_not_a_problem_either(tmp_path: Path) -> None:
    wf = minimal(tmp_path)
    write_tree(wf, {"deps/pkg/index.ts": "x"})
    os.symlink(wf / "deps", wf / "nodes" / "node_modules")
    assert sorted(ok(wf).config_map["data"]) == ["nodes__fetch.ts", "workflow.yaml"]


def test_missing_nodes_directory_still_renders_configmap(tmp_path: Path) -> None:
    # seed 000 says the ConfigMap alone succeeds; a node path with no file is still an error
    # for the whole render (REFERENCE §4: it would give a pod that never starts).
    from devloop.codefiles import read_code_files

    write_tree(tmp_path, {"workflow.yaml": MINIMAL_WORKFLOW})
    files, problems = read_code_files(tmp_path, str(tmp_path))
    assert problems == [] and [f.key for f in files] == ["workflow.yaml"]
    (message,) = errors(tmp_path)
    assert message.endswith(
        "node 'fetch': path './nodes/fetch.ts': file nodes/fetch.ts does not exist"
    )
    assert message.startswith(f"{tmp_path}/workflow.yaml:7:11:")


def test_subdirectories_are_included_and_mapped_back(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "nodes/lib/util.ts": "export const u = 1;\n",
            "nodes/lib/deep/more.ts": "export const m = 2;\n",
        },
    )
    bundle = ok(minimal(tmp_path))
    assert bundle.config_map["data"]["nodes__lib__util.ts"] == "export const u = 1;\n"
    volume = bundle.deployment["spec"]["template"]["spec"]["volumes"][0]
    assert volume["configMap"]["items"] == [
        {"key": "nodes__fetch.ts", "path": "nodes/fetch.ts"},
        {"key": "nodes__lib__deep__more.ts", "path": "nodes/lib/deep/more.ts"},
        {"key": "nodes__lib__util.ts", "path": "nodes/lib/util.ts"},
        {"key": "workflow.yaml", "path": "workflow.yaml"},
    ]


# --- file names that cannot be carried -------------------------------------------------


def test_double_underscore_in_a_name_is_an_error(tmp_path: Path) -> None:
    write_tree(tmp_path, {"nodes/my__helper.ts": "x"})
    (message,) = errors(minimal(tmp_path))
    assert message == (
        f"{tmp_path}/nodes/my__helper.ts: file and directory names must not "
        "contain '__': it separates path parts in ConfigMap keys"
    )


def test_invalid_key_characters_are_an_error(tmp_path: Path) -> None:
    write_tree(tmp_path, {"nodes/my helper.ts": "x"})
    (message,) = errors(minimal(tmp_path))
    assert message.startswith(
        f"{tmp_path}/nodes/my helper.ts: cannot be a ConfigMap key "
        "('nodes__my helper.ts'): a valid config key must consist of"
    )


def test_too_long_key_is_an_error(tmp_path: Path) -> None:
    name = "a" * 248 + ".ts"  # key: "nodes__" + 251 = 258 > 253
    write_tree(tmp_path, {f"nodes/{name}": "x"})
    (message,) = errors(minimal(tmp_path))
    assert "must be no more than 253 characters" in message and name in message


def test_non_utf8_file_is_an_error_with_line(tmp_path: Path) -> None:
    write_tree(tmp_path, {"nodes/latin.ts": b"// ok\n// caf\xe9\n"})
    (message,) = errors(minimal(tmp_path))
    assert message.startswith(f"{tmp_path}/nodes/latin.ts:2: is not valid UTF-8 (byte 0xe9")


def test_symlink_leaving_the_directory_is_an_error(tmp_path: Path) -> None:
    outside = tmp_path / "outside.ts"
    outside.write_text("secret stuff")
    wf = minimal(tmp_path / "wf")
    os.symlink(outside, wf / "nodes" / "link.ts")
    (message,) = errors(wf)
    assert message.startswith(f"{wf}/nodes/link.ts: is a link to {outside}, outside")


def test_node_path_symlink_outside_is_an_error(tmp_path: Path) -> None:
    outside = tmp_path / "other.ts"
    outside.write_text("x")
    wf = write_tree(tmp_path / "wf", {"workflow.yaml": MINIMAL_WORKFLOW})
    (wf / "nodes").mkdir()
    os.symlink(outside, wf / "nodes" / "fetch.ts")
    messages = errors(wf)
    assert any("node 'fetch'" in m and "outside the workflow directory" in m for m in messages)


def test_symlink_inside_the_directory_is_followed(tmp_path: Path) -> None:
    wf = minimal(tmp_path)
    os.symlink(wf / "nodes" / "fetch.ts", wf / "nodes" / "alias.ts")
    assert ok(wf).config_map["data"]["nodes__alias.ts"] == FETCH_TS


def test_node_in_node_modules_is_not_deployed(tmp_path: Path) -> None:
    text = MINIMAL_WORKFLOW.replace("./nodes/fetch.ts", "./nodes/node_modules/x.ts")
    wf = write_tree(tmp_path, {"workflow.yaml": text, "nodes/node_modules/x.ts": "x"})
    (message,) = errors(wf)
    assert "is not part of the deployed code" in message


def test_missing_workflow_yaml(tmp_path: Path) -> None:
    write_tree(tmp_path, {"nodes/fetch.ts": FETCH_TS})
    assert errors(tmp_path) == [
        f"{tmp_path}/workflow.yaml: not found: a workflow directory needs a workflow.yaml"
    ]


# --- values are byte-for-byte ------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        "  const indented = 1;\nexport default indented;\n",
        "const one = 1;\r\nconst two = 2;\r\n",
        "\tconst x = 1;\n\t\texport default x;\n",
        "export default 1",  # no final newline
        "// ünïcödé — ✓ 日本語\n",
        "/*\n---\nkey: value\n...\n*/\n",  # YAML document markers inside the code
        "const trailing = 1;   \nexport default trailing;\n",
        "\n\nconst leading = 1;\n\n\n",
        "\ufeffconst bom = 1;\n",
    ],
)
def test_values_are_byte_for_byte(tmp_path: Path, content: str) -> None:
    write_tree(tmp_path, {"nodes/odd.ts": content.encode("utf-8")})
    bundle = ok(minimal(tmp_path))
    assert bundle.config_map["data"]["nodes__odd.ts"] == content
    # And through the YAML printed by --render, and JSON as sent to the API server:
    for loaded in yaml.safe_load_all(dump_all(bundle.printable_manifests())):
        if loaded["kind"] == "ConfigMap":
            assert loaded["data"]["nodes__odd.ts"] == content
    assert json.loads(json.dumps(bundle.config_map))["data"]["nodes__odd.ts"] == content


# --- Deployment, Service, CronJobs -------------------------------------------------------


def test_deployment_shape(tmp_path: Path) -> None:
    bundle = ok(minimal(tmp_path))
    d = bundle.deployment
    assert d["metadata"]["name"] == "my-workflow"
    assert d["spec"]["replicas"] == 1
    assert d["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": "my-workflow"}}
    pod = d["spec"]["template"]["spec"]
    assert pod["runtimeClassName"] == "gvisor"
    (c,) = pod["containers"]
    assert c["name"] == "engine" and c["image"] == "pipedreamer-engine:latest"
    assert "args" not in c and "command" not in c
    assert c["ports"][0]["containerPort"] == 8080
    assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": 8080}
    assert c["resources"] == {
        "requests": {"memory": "64Mi", "cpu": "100m"},
        "limits": {"memory": "256Mi", "cpu": "500m"},
    }
    assert c["volumeMounts"] == [
        {"name": "code", "mountPath": "/app/workflow", "readOnly": True},
        {"name": "secrets", "mountPath": "/app/secrets", "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    code, secrets, tmp = pod["volumes"]
    # the pods mount an immutable copy named by the content, never the live ConfigMap
    snapshot = bundle.code_snapshot
    assert code["name"] == "code" and code["configMap"]["name"] == snapshot["metadata"]["name"]
    assert snapshot["metadata"]["name"] == f"my-workflow-code-{bundle.content_hash[:10]}"
    assert snapshot["immutable"] is True and snapshot["data"] == bundle.config_map["data"]
    assert secrets == {
        "name": "secrets",
        "secret": {"secretName": "my-workflow-secrets", "optional": True},
    }
    assert tmp == {"name": "tmp", "emptyDir": {}}
    labels = d["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "my-workflow"


def test_items_cover_exactly_the_configmap_keys(tmp_path: Path) -> None:
    write_tree(tmp_path, {"nodes/helper.ts": "x", "nodes/a/b.ts": "y"})
    bundle = ok(minimal(tmp_path))
    items = bundle.deployment["spec"]["template"]["spec"]["volumes"][0]["configMap"]["items"]
    assert sorted(i["key"] for i in items) == sorted(bundle.config_map["data"])
    assert {i["key"]: i["path"] for i in items}["nodes__a__b.ts"] == "nodes/a/b.ts"


def test_runtime_class_can_be_omitted(tmp_path: Path) -> None:
    d = ok(minimal(tmp_path), runtime_class="").deployment
    assert "runtimeClassName" not in d["spec"]["template"]["spec"]


def test_service_shape(tmp_path: Path) -> None:
    s = ok(minimal(tmp_path)).service
    assert s["metadata"]["name"] == "my-workflow"
    assert s["spec"]["type"] == "ClusterIP"
    assert s["spec"]["selector"] == {"app.kubernetes.io/name": "my-workflow"}
    assert s["spec"]["ports"][0]["port"] == 8080 and s["spec"]["ports"][0]["targetPort"] == 8080


def _with_triggers(root: Path, triggers: str) -> Path:
    text = MINIMAL_WORKFLOW.replace("triggers:\n  - type: manual\n", f"triggers:\n{triggers}")
    return write_tree(minimal(root), {"workflow.yaml": text})


def test_single_cron_trigger(tmp_path: Path) -> None:
    wf = _with_triggers(
        tmp_path,
        "  - type: cron\n    name: daily-digest\n    schedule: '0 9 * * *'\n  - type: manual\n",
    )
    (cron,) = ok(wf, namespace="prod").cronjobs
    assert cron["metadata"]["name"] == "my-workflow-cron"
    spec = cron["spec"]
    assert spec["schedule"] == "0 9 * * *"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["successfulJobsHistoryLimit"] == 3 and spec["failedJobsHistoryLimit"] == 3
    (container,) = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "curlimages/curl:latest"
    cmd = container["command"]
    assert cmd[-1] == "http://my-workflow.prod.svc.cluster.local:8080/run"
    assert cmd[cmd.index("-d") + 1] == '{"trigger":"daily-digest"}'


def test_several_cron_triggers_are_numbered_and_unnamed_posts_empty_object(tmp_path: Path) -> None:
    wf = _with_triggers(
        tmp_path,
        "  - type: cron\n    schedule: '0 9 * * *'\n"
        "  - type: cron\n    name: hourly\n    schedule: '@hourly'\n",
    )
    crons = ok(wf).cronjobs
    assert [c["metadata"]["name"] for c in crons] == ["my-workflow-cron-0", "my-workflow-cron-1"]
    bodies = []
    for c in crons:
        cmd = c["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
        bodies.append(cmd[cmd.index("-d") + 1])
    assert bodies == ["{}", '{"trigger":"hourly"}']


def test_trigger_pods_are_never_endpoints_of_the_workflows_service(tmp_path: Path) -> None:
    """A trigger pod the Service selects would be sent its own POST /run now and then."""
    wf = _with_triggers(tmp_path, "  - type: cron\n    schedule: '@hourly'\n")
    bundle = ok(wf)
    (cron,) = bundle.cronjobs
    pod_labels = cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    service_selector = bundle.service["spec"]["selector"]
    deployment_selector = bundle.deployment["spec"]["selector"]["matchLabels"]
    for chosen in (service_selector, deployment_selector):
        assert not chosen.items() <= pod_labels.items()
    assert pod_labels["app.kubernetes.io/part-of"] == "my-workflow"
    assert pod_labels["app.kubernetes.io/instance"] == "my-workflow-cron"
    assert cron["metadata"]["labels"]["app.kubernetes.io/name"] == "my-workflow"  # --down finds it
    # Nor of another workflow's Service, whatever its name (a workflow `my-workflow-cron`
    # selects app.kubernetes.io/name=my-workflow-cron): no pdwatch Service selects a pod
    # without the name label (issue 24 §2).
    assert "app.kubernetes.io/name" not in pod_labels
    other_dir = minimal(tmp_path / "other")
    yaml_file = other_dir / "workflow.yaml"
    yaml_file.write_text(
        yaml_file.read_text().replace("name: my-workflow", "name: my-workflow-cron")
    )
    other = ok(other_dir)
    assert not other.service["spec"]["selector"].items() <= pod_labels.items()


def test_cronjob_name_too_long_is_an_error(tmp_path: Path) -> None:
    # 46 + len("-cron-0") = 53 > 52; 45 + 7 = 52 is the longest allowed.
    wf = _with_triggers(
        tmp_path,
        "  - type: cron\n    schedule: '@hourly'\n  - type: cron\n    schedule: '@daily'\n",
    )
    text = (wf / "workflow.yaml").read_text().replace("my-workflow", "w" * 46)
    (wf / "workflow.yaml").write_text(text)
    messages = errors(wf)
    assert [m.split(": ", 1)[1] for m in messages] == [
        f"generated CronJob name '{'w' * 46}-cron-{i}' is invalid: must be no more than 52 "
        "characters (shorten the workflow name)"
        for i in (0, 1)
    ]
    (wf / "workflow.yaml").write_text(text.replace("w" * 46, "w" * 45))
    assert len(ok(wf).cronjobs) == 2


def test_workflow_name_longer_than_a_label_value_is_an_error(tmp_path: Path) -> None:
    wf = minimal(tmp_path)
    (wf / "workflow.yaml").write_text(MINIMAL_WORKFLOW.replace("my-workflow", "w" * 64))
    messages = errors(wf)
    assert any(
        "generated Service name" in m and "no more than 63 characters" in m for m in messages
    )
    assert any("label app.kubernetes.io/name=" in m for m in messages)


def test_invalid_namespace_is_an_error(tmp_path: Path) -> None:
    (message,) = errors(minimal(tmp_path), namespace="Prod")
    assert message.startswith("--namespace: 'Prod': a lowercase RFC 1123 label")


# --- Secret ----------------------------------------------------------------------------------


def test_secret_from_secrets_yaml(tmp_path: Path) -> None:
    write_tree(tmp_path, {".secrets.yaml": "github:\n  token: ghp_abc123\nplain: hello\n"})
    bundle = ok(minimal(tmp_path))
    assert bundle.secret is not None
    assert bundle.secret["metadata"]["name"] == "my-workflow-secrets"
    data = {k: base64.b64decode(v).decode() for k, v in bundle.secret["data"].items()}
    # A mapping as compact JSON (the engine parses it to an object); a string as itself
    # (stored JSON-quoted, a node would see the quotes).
    assert data == {"github": '{"token":"ghp_abc123"}', "plain": "hello"}
    assert "ghp_abc123" not in json.dumps(bundle.config_map)


def test_secret_from_secrets_dir(tmp_path: Path) -> None:
    write_tree(
        tmp_path, {".secrets/slack": '{"webhook_url": "https://hooks/x"}', ".secrets/.gitkeep": ""}
    )
    bundle = ok(minimal(tmp_path))
    assert bundle.secret is not None
    assert sorted(bundle.secret["data"]) == ["slack"]
    assert base64.b64decode(bundle.secret["data"]["slack"]) == b'{"webhook_url": "https://hooks/x"}'


def test_no_secrets_no_secret_object(tmp_path: Path) -> None:
    assert ok(minimal(tmp_path)).secret is None


def test_secret_values_never_printed(tmp_path: Path) -> None:
    write_tree(tmp_path, {".secrets.yaml": "github:\n  token: ghp_abc123\n"})
    bundle = ok(minimal(tmp_path))
    printed = dump_all(bundle.printable_manifests()) + repr(bundle)
    assert "ghp_abc123" not in printed
    assert base64.b64encode(b'{"token":"ghp_abc123"}').decode() not in printed
    assert "<redacted>" in printed


def test_secrets_yaml_syntax_error_does_not_quote_the_file(tmp_path: Path) -> None:
    write_tree(tmp_path, {".secrets.yaml": "token: [ghp_abc123\n"})
    (message,) = errors(minimal(tmp_path))
    assert message == (
        f"{tmp_path}/.secrets.yaml:1:8: YAML syntax error: a [ is never closed (missing ] "
        "or a comma)"
    )
    assert "ghp_abc123" not in message


def test_both_secret_sources_is_an_error(tmp_path: Path) -> None:
    write_tree(tmp_path, {".secrets.yaml": "a: b\n", ".secrets/a": "b"})
    (message,) = errors(minimal(tmp_path))
    assert "both .secrets.yaml and .secrets/ exist" in message


def test_invalid_secret_key_is_not_quoted(tmp_path: Path) -> None:
    """A typo can put the value in the key: `API_KEY=sk_live_123: x`."""
    write_tree(tmp_path, {".secrets.yaml": "ok: 1\nAPI_KEY=sk_live_123: x\n"})
    (message,) = errors(minimal(tmp_path))
    assert message.startswith(f"{tmp_path}/.secrets.yaml:2:1: this secret name is not a valid")
    assert "sk_live" not in message and "API_KEY" not in message


# --- image resolution cascade (seed 001, decision 5) ---------------------------------------


def test_image_flag_wins(tmp_path: Path) -> None:
    write_tree(tmp_path, {".pipedreamer/base-image.txt": "from-file:1\n"})
    bundle = ok(minimal(tmp_path), image="reg.local/engine:2")
    assert bundle.image.image == "reg.local/engine:2" and bundle.image.source == "--image"


def test_image_file_in_workflow_dir(tmp_path: Path) -> None:
    write_tree(tmp_path, {".pipedreamer/base-image.txt": "  reg.local:5000/pipedreamer-engine:3\n"})
    c = ok(minimal(tmp_path)).deployment["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "reg.local:5000/pipedreamer-engine:3"


def test_image_file_in_a_parent_up_to_the_git_root(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_tree(repo, {".pipedreamer/base-image.txt": "repo-level:1\n", ".git/HEAD": "x"})
    wf = minimal(repo / "workflows" / "one")
    assert ok(wf).image.image == "repo-level:1"


def test_image_file_above_the_git_root_is_not_used(tmp_path: Path) -> None:
    write_tree(tmp_path, {".pipedreamer/base-image.txt": "outside:1\n", "repo/.git/HEAD": "x"})
    wf = minimal(tmp_path / "repo" / "wf")
    assert ok(wf).image.image == "pipedreamer-engine:latest"


def test_image_file_in_a_shared_parent_outside_any_repository_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A workflow in /tmp with no repository around it: a base-image.txt anyone could put
    in /tmp (or /) never chooses its image (issue 24 §6)."""
    write_tree(tmp_path, {".pipedreamer/base-image.txt": "planted:1\n"})
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert ok(minimal(tmp_path / "wf")).image.image == "pipedreamer-engine:latest"
    assert files_outside(tmp_path / "wf") == []


def test_image_file_up_to_the_home_folder_outside_a_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    write_tree(tmp_path, {".pipedreamer/base-image.txt": "above-home:1\n"})
    write_tree(home, {".tentacular/base-image.txt": "home-level:1\n"})
    monkeypatch.setenv("HOME", str(home))
    wf = minimal(home / "work" / "wf")
    assert ok(wf).image.image == "home-level:1"
    assert home / ".tentacular" / "base-image.txt" in files_outside(wf)
    assert not any(tmp_path / ".pipedreamer" in p.parents for p in files_outside(wf))


def test_image_does_not_depend_on_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(tmp_path / "elsewhere", {".pipedreamer/base-image.txt": "cwd-image:1\n"})
    monkeypatch.setenv("HOME", str(tmp_path))
    wf = minimal(tmp_path / "wf")
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert ok(wf).image.image == "pipedreamer-engine:latest"
    monkeypatch.chdir(wf)
    assert ok(Path(".")).image.image == "pipedreamer-engine:latest"


def test_empty_image_file_is_an_error(tmp_path: Path) -> None:
    write_tree(tmp_path, {".pipedreamer/base-image.txt": "\n"})
    (message,) = errors(minimal(tmp_path))
    assert "base-image.txt: must contain one image reference" in message


# --- hash -----------------------------------------------------------------------------


def test_content_hash_is_stable_and_content_sensitive(tmp_path: Path) -> None:
    a = ok(minimal(tmp_path / "a"))
    b = ok(minimal(tmp_path / "b"))
    assert a.content_hash == b.content_hash
    assert a.config_map["metadata"]["annotations"]["pdwatch/content-hash"] == a.content_hash
    (tmp_path / "b" / "nodes" / "fetch.ts").write_text(FETCH_TS + "// edit\n")
    assert ok(tmp_path / "b").content_hash != a.content_hash


def test_problems_from_several_sources_are_all_reported(tmp_path: Path) -> None:
    text = MINIMAL_WORKFLOW.replace('"1.0"', '"one"')
    wf = write_tree(
        tmp_path,
        {
            "workflow.yaml": text,
            "nodes/fetch.ts": FETCH_TS,
            "nodes/bad__name.ts": "x",
            ".secrets.yaml": "[oops\n",
        },
    )
    messages = errors(wf)
    assert len(messages) == 3
    assert any("version 'one'" in m for m in messages)
    assert any("bad__name.ts" in m for m in messages)
    assert any(".secrets.yaml" in m for m in messages)


def test_folder_ending_in_underscore_is_an_error(tmp_path: Path) -> None:
    # Found by the property test: nodes/_/0.ts → key nodes_____0.ts → path nodes//_0.ts.
    write_tree(tmp_path, {"nodes/lib_/x.ts": "x"})
    (message,) = errors(minimal(tmp_path))
    assert message.startswith(f"{tmp_path}/nodes/lib_/x.ts: folder names must not end in '_'")


def test_leading_underscore_names_round_trip(tmp_path: Path) -> None:
    write_tree(tmp_path, {"nodes/_private/_util.ts": "u"})
    volume = ok(minimal(tmp_path)).deployment["spec"]["template"]["spec"]["volumes"][0]
    assert {"key": "nodes___private___util.ts", "path": "nodes/_private/_util.ts"} in volume[
        "configMap"
    ]["items"]


def test_fifo_named_ts_is_an_error_not_a_hang(tmp_path: Path) -> None:
    wf = minimal(tmp_path)
    os.mkfifo(wf / "nodes" / "pipe.ts")
    (message,) = errors(wf)
    assert message == f"{wf}/nodes/pipe.ts: is a named pipe (FIFO), not a regular file"


# --- TypeScript syntax, as Deno would refuse it (issue 18 §2) ------------------------------

TS_DATA = Path(__file__).parent / "data" / "typescript"


def test_real_typescript_constructs_are_no_syntax_error(tmp_path: Path) -> None:
    write_tree(
        minimal(tmp_path),
        {
            "nodes/fetch.ts": (TS_DATA / "valid.ts").read_text(),
            "nodes/lib/util.ts": "export const sleep = (ms: number) => ms;\n",  # it imports
        },
    )
    ok(tmp_path)
    for example in ("hello", "uptime-prober"):
        ok(Path(__file__).parent.parent / "examples" / example)


@pytest.mark.parametrize(
    ("source", "where", "what"),
    [
        (
            "export default async function run() {\n  const x = {a: 1\n  return x;\n}\n",
            "3:3",
            "unexpected 'return'",
        ),
        ("export default async function run() {\n  return 1;\n", "2:12", "missing '}'"),
        ("const a = ;\n", "1:9", "unexpected '='"),
    ],
)
def test_a_typescript_syntax_error_names_the_file_line_and_column(
    tmp_path: Path, source: str, where: str, what: str
) -> None:
    write_tree(minimal(tmp_path), {"nodes/lib/bad.ts": source})
    result = render(tmp_path, RenderOptions())
    assert isinstance(result, list)
    (problem,) = result
    assert str(problem).startswith(f"{tmp_path}/nodes/lib/bad.ts:{where}: TypeScript syntax error")
    assert what in problem.message
    assert problem.source is not None


def test_a_large_node_file_is_checked_in_the_worker_with_the_same_verdict_and_position() -> None:
    """Parsed here, tree-sitter held the GIL for 200 ms on a 600 KB file (the TUI froze),
    and its chunked form leaked every chunk: a large file is checked in a worker process,
    with the verdict and position of a check in this one."""
    from devloop import tscheck
    from devloop.codefiles import CodeFile

    line = 'console.log("🎉 é 漢字 flood");\n'
    broken = line * 3000 + "const x = ;\n" + line * 10
    assert len(broken) > 4 * tscheck.LARGE_CHARS
    here = tscheck._syntax_problem(CodeFile("nodes/big.ts", broken), "big.ts")
    tscheck._checked.clear()
    there = tscheck.syntax_problem(CodeFile("nodes/big.ts", broken), "big.ts")
    assert tscheck._pool, "the large file was not sent to the worker"
    assert there == here and there is not None
    assert (there.line, there.column) == (3001, 9)
    assert tscheck.syntax_problem(CodeFile("nodes/ok.ts", line * 5000), "ok.ts") is None


def test_saves_of_a_large_node_file_do_not_grow_memory(tmp_path: Path) -> None:
    """Each save of a large node file was kept (the syntax cache held full texts) and each
    parse leaked its input (tree-sitter's chunked read): 300 saves of 850 KB took a process
    from 31 to 532 MB (issue 24 §5). A fresh process renders 40 saves of one: it grows by
    no more than a few MB."""
    import subprocess
    import sys

    minimal(tmp_path)
    script = """
import sys, psutil
from pathlib import Path
from devloop.render import RenderOptions, render
root = Path(sys.argv[1])
line = "console.log('a line of a large generated node file');\\n"
def save(i):
    (root / "nodes" / "big.ts").write_text(f"// save {i}\\n" + line * 16000)
    assert not isinstance(render(root, RenderOptions()), list)
save(0)
save(1)
before = psutil.Process().memory_info().rss
for i in range(2, 42):
    save(i)
print((psutil.Process().memory_info().rss - before) // 2**20)
"""
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert int(proc.stdout) <= 8, proc.stdout


def test_code_that_etcd_would_refuse_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    """15,000 empty node files with long names: 750 KB of keys, under the 900 KB the code may
    take, but each key is stored twice (data and managedFields) and the ConfigMap would be
    refused by etcd after the Secret went out (issue 24 §5; the size rule is checked against
    the real API server in test_differential)."""
    root = minimal(tmp_path)
    folder = root / "nodes" / "generated"
    folder.mkdir()
    for n in range(15_000):
        (folder / f"module-long-descriptive-{n:05d}.ts").write_bytes(b"")
    problems = [str(p) for p in errors(root)]
    assert len(problems) >= 1, problems
    assert problems[0].startswith(f"{root}: ConfigMap my-workflow-code would be about ")
    assert (
        "over etcd's limit of 1,572,864 bytes for one object: each of the 15,001 code"
        in problems[0]
    )
    assert any("Deployment my-workflow would be" in p for p in problems), problems
    assert any("its code volume lists each of the 15,001 code files" in p for p in problems)
