"""Connection resolution, context safety, preflight, and the one-shot commands' exits."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kubernetes import client

from devloop.kube import safety
from devloop.kube.client import Kube
from devloop.kube.connection import ConnectionProblem, connect, kubeconfig_paths
from devloop.kube.preflight import preflight
from devloop.sim import EmbeddedCluster
from tests.helpers import MINIMAL_WORKFLOW, write_tree
from tests.processes import run_pdwatch
from tests.target import REAL, context_name, runtime_class, sim_only

EXAMPLES = Path(__file__).parent.parent / "examples"


# --- context safety ----------------------------------------------------------------------


def fake_dns(table: dict[str, list[str]]) -> safety.Resolver:
    return lambda host: table.get(host, [])


DNS = fake_dns(
    {
        "kubernetes.docker.internal": ["127.0.0.1"],
        "k0s.localhost": ["127.0.0.1"],
        "evil.localhost": ["93.184.216.34"],
        "api.example.com": ["93.184.216.35"],
    }
)


@pytest.mark.parametrize(
    ("context", "server"),
    [
        ("kind-dev", "https://127.0.0.1:39125"),
        ("kind-dev", "https://172.18.0.2:6443"),  # kind on a docker network
        ("k3d-x", "https://10.0.0.5:6443"),
        ("minikube", "https://192.168.49.2:8443"),
        ("docker-desktop", "https://kubernetes.docker.internal:6443"),
        ("rancher-desktop", "https://10.1.1.1:6443"),
        ("k0s", "https://k0s.localhost:6443"),
        ("k0s-lab", "https://[fe80::1]:6443"),  # link-local
        ("pdwatch-embedded", "http://127.0.0.1:1"),
        ("anything", "https://127.0.0.1:6443"),
        ("anything", "https://[::1]:6443"),
    ],
)
def test_local_contexts_are_allowed(context: str, server: str) -> None:
    assert safety.refusal(context, server, set(), resolver=DNS) is None


@pytest.mark.parametrize(
    ("context", "server", "proxy", "why"),
    [
        ("prod-eu", "https://api.example.com", "", "does not look like a local"),
        ("kind-dev", "https://8.8.8.8:6443", "", "its name looks local but its server"),
        ("minikube", "https://api.example.com:8443", "", "its name looks local but"),
        ("anything", "https://evil.localhost:6443", "", "does not look like a local"),
        ("anything", "https://10.0.0.5:6443", "", "does not look like a local"),  # private only
        ("kind-dev", "https://127.0.0.1:6443", "http://proxy.corp:3128", "goes through the proxy"),
        ("kind-dev", "https://unresolvable.invalid:6443", "", "its name looks local but"),
    ],
)
def test_non_local_contexts_are_refused_with_how_to_allow_them(
    context: str, server: str, proxy: str, why: str
) -> None:
    reason = safety.refusal(context, server, set(), proxy, resolver=DNS)
    assert reason is not None and why in reason, reason
    assert reason.endswith(f"run again with --allow-context {context}")
    assert safety.refusal(context, server, {context}, proxy, resolver=DNS) is None


@pytest.mark.parametrize(
    "server",
    [
        "http://203.0.113.10:80\\@127.0.0.1:16441",  # urllib: loopback; the client: 203.…
        "https://user@127.0.0.1:6443",
        "https://user:pw@127.0.0.1:6443",
        "https://127.0.0.1%2f@evil:6443",
        "ftp://127.0.0.1:6443",
        "127.0.0.1:6443",
        "https://127.0.0.1:6443 evil",
        "https://127.0.0.1:6443\t",
        "https://127.0.0.1:notaport",
        "https://:6443",
    ],
)
def test_an_ambiguous_server_address_is_refused_whatever_the_flags(server: str) -> None:
    for allowed in (set(), {"kind-dev"}):
        reason = safety.refusal("kind-dev", server, allowed, resolver=DNS)
        assert reason is not None and "cannot be trusted" in reason, (server, reason)


def plugin_kubeconfig(path: Path, context: str, server: str, marker: Path) -> Path:
    """A kubeconfig whose only user runs an exec credential plugin that leaves `marker`."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": context,
        "clusters": [{"name": context, "cluster": {"server": server}}],
        "users": [
            {
                "name": "u",
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1",
                        "command": "sh",
                        "args": ["-c", f"touch {marker}; echo '{{}}'"],
                        "interactiveMode": "Never",
                    }
                },
            }
        ],
        "contexts": [{"name": context, "context": {"cluster": context, "user": "u"}}],
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_backslash_userinfo_server_never_gets_the_credentials(tmp_path: Path) -> None:
    """The adversarial campaign's repro: a context named production whose server urllib
    reads as loopback; its exec plugin must not run, with or without --allow-context."""
    marker = tmp_path / "plugin-ran"
    server = "http://203.0.113.10:80\\@127.0.0.1:16441"
    path = plugin_kubeconfig(tmp_path / "kc", "production", server, marker)
    for extra in ([], ["--allow-context", "production"]):
        proc = run_pdwatch(str(EXAMPLES / "hello"), "--once", "--kubeconfig", str(path), *extra)
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert "cannot be trusted" in proc.stdout.replace("\n", " ")
        assert "Traceback" not in proc.stdout + proc.stderr
        assert not marker.exists()


def test_a_refused_context_never_runs_its_credential_plugin(tmp_path: Path) -> None:
    """The refusal comes before any credential is used: an exec plugin is not run."""
    marker = tmp_path / "plugin-ran"
    path = plugin_kubeconfig(tmp_path / "kc", "prod", "https://203.0.113.10:6443", marker)
    proc = run_pdwatch(str(EXAMPLES / "hello"), "--once", "--kubeconfig", str(path))
    assert proc.returncode == 3
    assert "run again with --allow-context prod" in proc.stdout.replace("\n", " ")
    assert not marker.exists()


# --- connection ----------------------------------------------------------------------------


def kubeconfig(path: Path, contexts: dict[str, tuple[str, str | None]], current: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": current,
        "clusters": [{"name": n, "cluster": {"server": s}} for n, (s, _) in contexts.items()],
        "users": [{"name": "u", "user": {}}],
        "contexts": [
            {"name": n, "context": {"cluster": n, "user": "u", **({"namespace": ns} if ns else {})}}
            for n, (_, ns) in contexts.items()
        ],
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_kubeconfig_sources_in_order(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    assert kubeconfig_paths(flag, {"KUBECONFIG": "/a:/b"}) == [flag]
    assert kubeconfig_paths(None, {"KUBECONFIG": "/a:/b"}) == [Path("/a"), Path("/b")]
    assert kubeconfig_paths(None, {"HOME": "/home/u"}) == [Path("/home/u/.kube/config")]


def test_context_and_namespace_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one = kubeconfig(tmp_path / "one", {"kind-a": ("http://127.0.0.1:1", "team")}, "kind-a")
    two = kubeconfig(tmp_path / "two", {"k3d-b": ("http://127.0.0.1:2", None)}, "k3d-b")
    monkeypatch.setenv("KUBECONFIG", f"{one}:{two}")
    conn = connect()
    assert (conn.context, conn.server, conn.namespace) == ("kind-a", "http://127.0.0.1:1", "team")
    conn = connect(context="k3d-b")  # from the second file of KUBECONFIG
    assert (conn.context, conn.namespace) == ("k3d-b", "default")
    assert connect(context="kind-a", namespace="mine").namespace == "mine"
    with pytest.raises(ConnectionProblem) as info:
        connect(context="nope")
    assert "context 'nope' is not in the kubeconfig (contexts: kind-a, k3d-b)" in str(info.value)


def test_missing_kubeconfig_suggests_embedded(tmp_path: Path) -> None:
    with pytest.raises(ConnectionProblem) as info:
        connect(kubeconfig=tmp_path / "none")
    assert "try pdwatch with --embedded" in str(info.value)


# --- preflight -----------------------------------------------------------------------------


async def checks_for(
    api: client.ApiClient, namespace: str, runtime: str | None = None, create: bool = False
) -> list[str]:
    kube = Kube(api, namespace)
    found = await preflight(
        kube,
        context_name(),
        runtime_class() if runtime is None else runtime,
        with_secret=True,
        with_cronjobs=True,
        create_namespace=create,
    )
    return [line for check in found for line in check.lines()]


async def test_preflight_passes_on_the_cluster(
    api_client: client.ApiClient, namespace: str
) -> None:
    lines = await checks_for(api_client, namespace)
    reachable = "  ✓ Kubernetes API reachable (v1.36.0+pdwatch-embedded)"
    if REAL is not None:  # a real cluster's own version
        assert lines[0].startswith("  ✓ Kubernetes API reachable (v"), lines
        reachable = lines[0]
    runtime = [f'  ✓ RuntimeClass "{runtime_class()}" available'] if runtime_class() else []
    assert lines == [
        reachable,
        f'  ✓ Namespace "{namespace}" exists',
        *runtime,
        "  ✓ permissions to deploy and follow the workflow",
    ]


async def test_preflight_missing_namespace_and_create(
    api_client: client.ApiClient, namespace: str
) -> None:
    team = f"{namespace}-team"  # the test's own (tests/faultproxy.py)
    lines = await checks_for(api_client, team)
    assert f'  ✗ Namespace "{team}" not found' in lines
    assert (
        f"    -> create it: kubectl --context {context_name()} create namespace {team} (or run "
        "pdwatch with "
        "--create-namespace)"
    ) in lines
    try:
        assert f'  ✓ Namespace "{team}" created' in await checks_for(api_client, team, create=True)
        assert f'  ✓ Namespace "{team}" exists' in await checks_for(api_client, team)
    finally:
        client.CoreV1Api(api_client).delete_namespace(team)


async def test_preflight_missing_runtime_class(
    api_client: client.ApiClient, namespace: str
) -> None:
    lines = await checks_for(api_client, namespace, runtime="kata")
    assert '  ✗ RuntimeClass "kata" not found' in lines
    assert (
        '    -> install it in the cluster, or run pdwatch with --runtime-class "" to use '
        "the default runtime"
    ) in lines


async def test_preflight_missing_permissions(
    cluster: EmbeddedCluster, api_client: client.ApiClient, namespace: str
) -> None:
    cluster.forbid("patch", "deployments")
    cluster.forbid("watch", "pods")
    lines = await checks_for(api_client, namespace)
    assert f'  ✗ not allowed in namespace "{namespace}": patch deployments.apps, watch pods' in (
        lines
    )
    assert (
        "    -> ask for a Role granting these; check with: kubectl auth can-i patch "
        f"deployments -n {namespace}" in lines
    )


async def test_preflight_unreachable(
    cluster: EmbeddedCluster, api_client: client.ApiClient, namespace: str
) -> None:
    cluster.stop_server()
    lines = await checks_for(api_client, namespace)
    assert len(lines) == 2
    assert (
        lines[0] == "  ✗ Kubernetes API not reachable: reach the API server: cluster "
        "unreachable: Connection refused"
    )
    assert lines[1] == (
        f"    -> is the cluster running? kubectl --context {context_name()} cluster-info"
    )


# --- the one-shot commands as processes ----------------------------------------------------


@sim_only("pdwatch --embedded starts a cluster of its own")
def test_once_embedded_deploys_and_prints_the_first_log_lines() -> None:
    proc = run_pdwatch(str(EXAMPLES / "uptime-prober"), "--once", "--embedded")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "✓ permissions to deploy and follow the workflow" in proc.stdout
    assert " Ready in " in proc.stdout
    assert "] Pipedreamer Engine starting..." in proc.stdout
    assert "]   Stage 4: [notify]" in proc.stdout


def test_once_invalid_workflow_exits_1(tmp_path: Path) -> None:
    write_tree(tmp_path, {"workflow.yaml": MINIMAL_WORKFLOW.replace('"1.0"', "one")})
    proc = run_pdwatch(str(tmp_path), "--once", "--embedded")
    assert proc.returncode == 1
    assert "version 'one' must be MAJOR.MINOR" in proc.stdout


def test_once_refuses_a_remote_context_with_exit_3(tmp_path: Path) -> None:
    config = kubeconfig(tmp_path / "kc", {"prod": ("https://k8s.example.com:6443", None)}, "prod")
    proc = run_pdwatch(str(EXAMPLES / "hello"), "--once", "--kubeconfig", str(config))
    assert proc.returncode == 3
    assert "run again with --allow-context prod" in proc.stdout.replace("\n", " ")


def test_once_preflight_failure_exits_3(
    tmp_path: Path, cluster: EmbeddedCluster, namespace: str
) -> None:
    config = cluster.write_kubeconfig(tmp_path / "kc")
    team = f"{namespace}-team"  # the test's own, never created
    proc = run_pdwatch(str(EXAMPLES / "hello"), "--once", "--kubeconfig", str(config), "-n", team)
    assert proc.returncode == 3
    assert f'✗ Namespace "{team}" not found' in proc.stdout


def test_once_rollout_failure_exits_4(tmp_path: Path, cluster: EmbeddedCluster) -> None:
    config = cluster.write_kubeconfig(tmp_path / "kc")
    proc = run_pdwatch(
        str(EXAMPLES / "hello"),
        "--once",
        "--kubeconfig",
        str(config),
        "--image",
        "registry.invalid/missing:1",
    )
    assert proc.returncode == 4
    assert (
        "rollout failed: ErrImagePull" in proc.stdout
        or "rollout failed: ImagePullBackOff" in proc.stdout
    )
    # explained before exiting (explain.CATALOGUE: registry-unreachable)
    assert "what happened: the cluster's node cannot reach the registry registry.invalid" in (
        proc.stdout
    )
    assert "what to do: check the registry in the image's name" in proc.stdout


def test_down_then_down_again(tmp_path: Path, cluster: EmbeddedCluster) -> None:
    config = cluster.write_kubeconfig(tmp_path / "kc")
    assert (
        run_pdwatch(str(EXAMPLES / "hello"), "--once", "--kubeconfig", str(config)).returncode == 0
    )
    down = run_pdwatch(str(EXAMPLES / "hello"), "--down", "--kubeconfig", str(config))
    assert down.returncode == 0
    assert (
        "deleted Deployment/hello" in down.stdout and "deleted ConfigMap/hello-code" in down.stdout
    )
    again = run_pdwatch(str(EXAMPLES / "hello"), "--down", "--kubeconfig", str(config))
    assert again.returncode == 0 and "nothing of workflow hello" in again.stdout


@pytest.mark.parametrize("what", ["directory", "yaml-error", "fifo", "list"])
def test_an_unreadable_kubeconfig_is_a_problem_named_by_its_path(tmp_path: Path, what: str) -> None:
    """Exit 3 with `kubeconfig PATH: …`, never a traceback, and never a hang (a FIFO)."""
    import os

    path = tmp_path / "kc"
    if what == "directory":
        path.mkdir()
    elif what == "yaml-error":
        path.write_text("apiVersion: v1\nclusters: [\n")
    elif what == "fifo":
        os.mkfifo(path)
    else:
        path.write_text("- a\n- b\n")
    proc = run_pdwatch(str(EXAMPLES / "hello"), "--once", "--kubeconfig", str(path))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert f"kubeconfig {path}" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_relative_certificate_paths_are_read_from_their_own_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """KUBECONFIG=a:b, b names the cluster with a relative CA path: kubectl reads it
    relative to b, not to a. (The file holds no certificate: the error names the file
    read, before any request is sent.)"""
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (second / "ca.crt").write_text("not checked here\n")
    (first / "kc").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "kind-x",
                "contexts": [{"name": "kind-x", "context": {"cluster": "c", "user": "u"}}],
                "users": [{"name": "u", "user": {}}],
            }
        )
    )
    (second / "kc").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {
                            "server": "https://127.0.0.1:6443",
                            "certificate-authority": "ca.crt",
                        },
                    }
                ],
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", f"{first / 'kc'}:{second / 'kc'}")
    with pytest.raises(ConnectionProblem) as info:
        connect(allowed=set())
    assert f"certificates {second / 'ca.crt'}: " in str(info.value)
    assert "no certificate" in str(info.value)


def test_a_kind_cluster_is_told_by_the_references_test() -> None:
    from devloop.render import RenderOptions, kind_cluster

    assert kind_cluster("kind-dev", "https://127.0.0.1:39017") == "dev"
    assert kind_cluster("kind-dev", "https://[::1]:6443") == "dev"
    assert kind_cluster("kind-dev", "https://10.0.0.5:6443") is None  # not this machine's
    assert kind_cluster("k0s", "https://127.0.0.1:6443") is None
    default = RenderOptions(runtime_class_given=False)
    options, note = default.for_cluster("team", "kind-dev", "https://127.0.0.1:1")
    assert (options.namespace, options.runtime_class) == ("team", "")
    assert note == "kind cluster 'dev': no RuntimeClass (stock kind has no gvisor); " + (
        "--runtime-class NAME sets one"
    )
    given = RenderOptions(runtime_class="gvisor")  # --runtime-class gvisor: kept
    assert given.for_cluster("team", "kind-dev", "https://127.0.0.1:1")[0].runtime_class == (
        "gvisor"
    )
    assert default.for_cluster("team", "k0s", "https://127.0.0.1:1") == (
        RenderOptions(namespace="team", runtime_class_given=False),
        None,
    )


@sim_only("a kubeconfig whose context is named like kind's")
def test_on_a_kind_cluster_the_default_runtime_class_is_dropped(
    tmp_path: Path, cluster: EmbeddedCluster
) -> None:
    """Stock kind has no gVisor: --once there used to stop at 'RuntimeClass "gvisor" not
    found'; as tntc does, the default is dropped on a local kind cluster, and said."""
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kc", context="kind-dev")
    api = client.ApiClient(client.Configuration(host=cluster.url))
    client.NodeV1Api(api).delete_runtime_class("gvisor")  # as on stock kind
    proc = run_pdwatch(str(EXAMPLES / "hello"), "--once", "--kubeconfig", str(kubeconfig))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "kind cluster 'dev': no RuntimeClass (stock kind has no gvisor)" in proc.stdout
    apps = client.AppsV1Api(api)
    spec = apps.read_namespaced_deployment("hello", "default").spec.template.spec
    assert spec.runtime_class_name is None


async def test_network_policies_are_asked_for_only_when_the_workflow_has_one(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient, namespace: str
) -> None:
    """A Role without NetworkPolicies: a Pipedreamer workflow deploys (the policy of a
    Tentacular one it may once have been is read only to prune it, and a refused read
    means there is none of pdwatch's to prune); the cluster check of a Tentacular workflow
    with a contract names the permission its deploy needs, before anything is written."""
    import shutil

    from devloop.kube.deploy import RestartStamps, deploy_cycle
    from devloop.render import Bundle, render
    from tests.target import render_options

    cluster.forbid("get", "networkpolicies")
    cluster.forbid("patch", "networkpolicies")
    directory = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", directory)
    bundle = render(directory, render_options(namespace))
    assert isinstance(bundle, Bundle) and bundle.network_policy is None
    seen: list[object] = []
    result = await deploy_cycle(Kube(api_client, namespace), bundle, seen.append, RestartStamps())
    assert result.ok, seen
    found = await preflight(
        Kube(api_client, namespace),
        context_name(),
        "",
        with_secret=False,
        with_cronjobs=False,
        create_namespace=False,
        with_network_policy=True,
    )
    lines = [line for check in found for line in check.lines()]
    assert (
        f'  ✗ not allowed in namespace "{namespace}": patch networkpolicies.networking.k8s.io, '
        "get networkpolicies.networking.k8s.io"
    ) in lines


async def test_the_cluster_check_asks_for_every_operation_a_session_needs(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    """What preflight checks is what a session requests (issue 27: a deploy it approved was
    refused): a deploy with a Secret and a CronJob, a save, `t`, the history. Requests whose
    refusal is tolerated (reads and deletes made only to prune) may be missing."""
    import asyncio
    import shutil

    from devloop import events
    from devloop.kube.operations import needed_operations
    from tests.looprig import Rig

    directory = tmp_path / "uptime-prober"
    shutil.copytree(EXAMPLES / "uptime-prober", directory)
    (directory / ".secrets.yaml").write_text("slack:\n  token: t\n")
    kube = Kube(api_client, namespace)
    rig = Rig(directory, kube, debounce_ms=20)
    task = asyncio.create_task(rig.loop.run())
    try:
        assert (await rig.cycle_done()).outcome == "ready", rig.events
        mark = rig.mark()
        path = directory / "nodes" / "format-report.ts"
        path.write_text(path.read_text() + "\n// a save\n")
        assert (await rig.cycle_done(mark)).outcome == "ready"
        await rig.wait_for(events.Recorded, since=mark)
        await rig.loop.trigger_run({})
        await rig.loop.history()
    finally:
        rig.loop.quit()
        await task
    checked = set(needed_operations(with_secret=True, with_cronjobs=True))
    tolerated = {
        ("delete", "configmaps", ""),  # code copies no ReplicaSet mounts: pruned if allowed
        ("get", "networkpolicies", "networking.k8s.io"),  # only to prune one
        ("list", "networkpolicies", "networking.k8s.io"),  # its watch: refused, read by name
        ("watch", "networkpolicies", "networking.k8s.io"),
        ("create", "pods/proxy", ""),  # the local URL and `t`: refused, they say so
    }
    missing = kube.operations - checked - tolerated
    assert not missing, sorted(missing)
