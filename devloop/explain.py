"""What a failure means and what to do about it, from the cluster's own words.

The cluster says `ErrImagePull: … not found`; a developer wants to read "the image is not
in the cluster: kind load docker-image engine:dev --name dev". Each entry of CATALOGUE
recognises one failure by its reason and the words of its message (as the kubelet, the
controllers and the API server write them) and says, in one line each, what happened
and what to do, using what pdwatch knows: the context (which kind of cluster), the
image, the namespace. Pure functions over text: the catalogue is tested entry by entry.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass

from devloop import events
from devloop.image import DEFAULT_IMAGE
from devloop.kube.operations import described

EMBEDDED_CONTEXT = "pdwatch-embedded"


@dataclass(frozen=True)
class Situation:
    """What pdwatch knows besides the failure."""

    context: str = ""
    image: str = ""
    namespace: str = ""
    runtime_class: str = ""


@dataclass(frozen=True)
class Explanation:
    what: str  # what happened, in words a developer uses
    fix: str  # what to do, with the command where there is one


@dataclass(frozen=True)
class Failure:
    reason: str
    message: str
    pod: str = ""
    last_logs: tuple[str, ...] = ()


Explain = Callable[[re.Match[str], Failure, Situation], Explanation]


@dataclass(frozen=True)
class Entry:
    name: str  # for tests and for the catalogue's own listing
    reasons: frozenset[str]  # the reasons it answers to ("*": any)
    pattern: re.Pattern[str]  # searched in the message (and, for crashes, the last logs)
    explain: Explain
    in_logs: bool = False


# --- the cluster's flavour, from the context's name ---------------------------------------


def load_command(situation: Situation) -> str | None:
    """How an image built on this machine gets into this cluster's nodes."""
    context, image = situation.context, situation.image or "IMAGE"
    if context.startswith("kind-"):
        return f"kind load docker-image {image} --name {context.removeprefix('kind-')}"
    if context.startswith("k3d-"):
        return f"k3d image import {image} -c {context.removeprefix('k3d-')}"
    if context == "minikube":
        return f"minikube image load {image}"
    if context == "k0s" or context.startswith("k0s-"):
        return (
            f"docker save {image} -o engine.tar, then on the node: k0s ctr images import engine.tar"
        )
    return None


def _image_fix(situation: Situation) -> str:
    load = load_command(situation)
    where = "in .pipedreamer/base-image.txt or --image"
    if situation.context == EMBEDDED_CONTEXT:
        return f"the embedded cluster pulls any image but this one: check its name {where}"
    if load:
        return f"an image built on this machine must be loaded into the cluster: {load}"
    pushed = situation.image or "IMAGE"
    return f"push it to its registry (docker push {pushed}) or fix the name {where}"


# --- entries ---------------------------------------------------------------------------


def _image_missing(m: re.Match[str], f: Failure, s: Situation) -> Explanation:
    return Explanation(f"the image {s.image or '(engine)'} is not in its registry", _image_fix(s))


def _image_denied(m: re.Match[str], f: Failure, s: Situation) -> Explanation:
    host = _registry(s.image)
    load = load_command(s)
    secret = (
        # written as YAML and applied: kubectl's typed `create` sends protobuf, which the
        # embedded cluster does not read (every cluster reads this form)
        f"kubectl create secret docker-registry regcred --docker-server={host} "
        "--docker-username=… --docker-password=… "
        f"-n {s.namespace or 'NAMESPACE'} --dry-run=client -o yaml | kubectl apply -f -, "
        "then kubectl patch serviceaccount default "
        f"-n {s.namespace or 'NAMESPACE'} -p "
        """'{"imagePullSecrets":[{"name":"regcred"}]}'"""
    )
    image = s.image or "the image"
    if host == "docker.io":
        # Docker Hub answers a repository it does not have as it answers a private one: a
        # typo, or an image built here and never loaded into the cluster, most often.
        fixes = []
        close = difflib.get_close_matches(s.image, ENGINE_IMAGES, n=1, cutoff=0.8)
        if close and close[0] != s.image:
            fixes.append(f"did you mean {close[0]}? (--image, or .pipedreamer/base-image.txt)")
        if load:
            fixes.append(f"built on this machine? load it: {load}")
        fixes.append(f"private? {secret}")
        return Explanation(
            f"the image {image} is not on Docker Hub, or is private there (Docker Hub answers "
            "both alike)",
            "; ".join(fixes),
        )
    return Explanation(
        f"the registry {host} refused the pull of {image}: it is private (or does not exist there)",
        secret + (f"; or load it: {load}" if load else ""),
    )


def _registry_unreachable(m: re.Match[str], f: Failure, s: Situation) -> Explanation:
    host = _registry(s.image)
    load = load_command(s)
    return Explanation(
        f"the cluster's node cannot reach the registry {host}",
        "check the registry in the image's name"
        + (f"; a cluster without that registry can be given the image: {load}" if load else ""),
    )


def _image_other(m: re.Match[str], f: Failure, s: Situation) -> Explanation:
    return Explanation(f"the image {s.image or '(engine)'} could not be pulled", _image_fix(s))


def _invalid_image(m: re.Match[str], f: Failure, s: Situation) -> Explanation:
    return Explanation(
        f"the image name {s.image!r} is not a valid reference",
        "fix it in .pipedreamer/base-image.txt or --image (e.g. registry/name:tag)",
    )


def _oom(m: re.Match[str], f: Failure, s: Situation) -> Explanation:
    return Explanation(
        "the engine was killed for using more memory than its limit (256Mi, the reference "
        "CLI's: the real deploy would be killed too)",
        "hold less in memory in the nodes (stream or page large data); the last log lines "
        "show how far it got",
    )


def _module_missing(m: re.Match[str], f: Failure, s: Situation) -> Explanation:
    path = m.group(1)
    return Explanation(
        f"a node imports {path}, which is not in the deployed workflow",
        "add the file (under nodes/, as a .ts file) or fix the import: imports are "
        "relative to the node file",
    )


def _failed_in_node(m: re.Match[str], f: Failure, s: Situation) -> Explanation:
    path, line, col = m.group(1), m.group(2), m.group(3)
    return Explanation(
        f"the engine failed in {path}:{line}:{col} while loading it",
        f"fix {path} at line {line}; the last log lines show the error",
    )


def _edges_missing(m: re.Match[str], f: Failure, s: Situation) -> Explanation:
    return Explanation(
        "the engine refused workflow.yaml: it has no edges array",
        "add edges: [] to workflow.yaml when the nodes do not feed each other",
    )


def _exited(m: re.Match[str], f: Failure, s: Situation) -> Explanation:
    code = m.group(1)
    pod = f.pod or "POD"
    return Explanation(
        f"the engine exited with code {code} at start",
        f"read its last lines above, or all of them: kubectl logs {pod} --previous "
        f"-n {s.namespace or 'NAMESPACE'}",
    )


def _not_ready(m: re.Match[str], f: Failure, s: Situation) -> Explanation:
    return Explanation(
        "the engine runs but does not answer its readiness check (GET /health on port 8080)",
        "the engine serves /health once the workflow has loaded: look at its log lines "
        "for what it is stuck on",
    )


def _not_alive(m: re.Match[str], f: Failure, s: Situation) -> Explanation:
    return Explanation(
        "the engine did not answer its liveness check (GET /health on port 8080), so the "
        "kubelet restarted it",
        "the engine serves /health once the workflow has loaded: a node that waits at load "
        "(a top-level await) keeps it from serving; its log lines say how far it got",
    )


def _mount_missing(m: re.Match[str], f: Failure, s: Situation) -> Explanation:
    kind, name = m.group(1), m.group(2)
    if kind == "secret":
        return Explanation(
            f"the pod mounts the Secret {name}, which is not in the namespace",
            "pdwatch writes it from .secrets.yaml or .secrets/ on the next save; if someone "
            "deleted it, save any file",
        )
    return Explanation(
        f"the pod mounts the ConfigMap {name}, which is not in the namespace",
        "pdwatch writes it on every deploy: save any file to write it again (someone deleted "
        "it, or the namespace was emptied)",
    )


def _mount_key_missing(m: re.Match[str], f: Failure, s: Situation) -> Explanation:
    return Explanation(
        f"the pod mounts the key {m.group(1)}, which its ConfigMap or Secret does not have",
        "save any file: pdwatch writes the objects and the pod together",
    )


def _quota(m: re.Match[str], f: Failure, s: Situation) -> Explanation:
    quota, detail = m.group(1), m.group(2).strip()
    return Explanation(
        f"the namespace's ResourceQuota {quota} refuses the pod ({detail})",
        f"kubectl describe resourcequota {quota} -n {s.namespace or 'NAMESPACE'} shows "
        "what is used; free some of it or ask for a larger quota",
    )


def _pod_security(m: re.Match[str], f: Failure, s: Situation) -> Explanation:
    level, detail = m.group(1), m.group(2).strip()
    return Explanation(
        f'the namespace\'s Pod Security level "{level}" refuses the pod: {detail}',
        "pdwatch deploys what the reference CLI deploys (restricted-compatible); a "
        "namespace label pod-security.kubernetes.io/enforce set above it must be relaxed "
        "by whoever owns the namespace",
    )


def _service_account(m: re.Match[str], f: Failure, s: Situation) -> Explanation:
    ns = s.namespace or "NAMESPACE"
    return Explanation(
        "the namespace's default ServiceAccount does not exist yet (the cluster's controller "
        "manager creates one in every namespace within seconds)",
        f"check kubectl get serviceaccount default -n {ns}: once it is there, the pod is "
        "created (or press r); if it never comes, the controller manager is not running",
    )


def _runtime_class(m: re.Match[str], f: Failure, s: Situation) -> Explanation:
    name = m.group(1)
    return Explanation(
        f'the cluster has no RuntimeClass "{name}" (stock kind and k0s have none)',
        '--runtime-class "" runs the pod without it; or install it (gVisor: runsc)',
    )


LIST_TAINTS = "kubectl get nodes -o custom-columns=NODE:.metadata.name,TAINTS:.spec.taints"


def _taint(m: re.Match[str], f: Failure, s: Situation) -> Explanation:
    """Kubernetes before 1.35 named the taint ({key: value}); since then the scheduler says
    only "had untolerated taint(s)", so the fix shows how to see them."""
    taint = m.group(1)
    if taint is None:
        return Explanation(
            "every node carries a taint the pod does not tolerate",
            f"see the taints with {LIST_TAINTS}; on a one-node dev cluster remove one "
            "with kubectl taint nodes --all KEY-",
        )
    key = taint.split(":", 1)[0].strip(" {}")
    return Explanation(
        f"every node carries a taint the pod does not tolerate ({taint})",
        f"on a one-node dev cluster: kubectl taint nodes --all {key}-",
    )


def _insufficient(m: re.Match[str], f: Failure, s: Situation) -> Explanation:
    what = m.group(1)
    return Explanation(
        f"no node has enough {what} free for the pod's request",
        "kubectl describe nodes shows what is allocated (under Allocated resources); "
        "delete what you do not need, or give the cluster more",
    )


def _no_nodes(m: re.Match[str], f: Failure, s: Situation) -> Explanation:
    return Explanation(
        "the cluster has no node that runs pods",
        "k0s: a controller runs pods only with --enable-worker (k0s install controller "
        "--single); otherwise add a worker node",
    )


def _deadline(m: re.Match[str], f: Failure, s: Situation) -> Explanation:
    # f.pod names the new ReplicaSet here; its pods carry its pod-template-hash
    selector = f"pod-template-hash={f.pod.rsplit('-', 1)[-1]}" if "-" in f.pod else "POD"
    return Explanation(
        "the Deployment made no progress within its progressDeadlineSeconds",
        "the reason is in the pod's events: kubectl describe pods -n "
        f"{s.namespace or 'NAMESPACE'} -l {selector}",
    )


IMAGE_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff"})
CRASH_REASONS = frozenset({"Error", "Completed", "ContainerCannotRun", "StartError"})
WAITING = frozenset({"Timeout", "FailedCreate", "FailedScheduling", "FailedMount"})
ANY = frozenset({"*"})


# Where the engine's messages place a workflow file: /app/workflow in a pod; a directory
# of its own where pdwatch's node runs the engine as a local process.
WORKFLOW_URL = r"file://(?:/[^\s\"/]+)*?/workflow/"


def _no_default(m: re.Match[str], f: Failure, s: Situation) -> Explanation:
    path = m.group(1).removeprefix("./")
    return Explanation(
        f"the engine refused {path}: it has no default export, so there is nothing to run",
        f"add `export default async function run(ctx, input) {{ … }}` to {path}",
    )


def _re(text: str) -> re.Pattern[str]:
    return re.compile(text, re.IGNORECASE)


CATALOGUE: tuple[Entry, ...] = (
    # images (the kubelet's pull errors carry containerd's or the registry's words)
    Entry(
        "image-private",
        IMAGE_REASONS,
        _re(
            r"unauthorized|authentication required|pull access denied|insufficient_scope|"
            r"403 forbidden"
        ),
        _image_denied,
    ),
    Entry("image-missing", IMAGE_REASONS, _re(r"not found|manifest unknown"), _image_missing),
    Entry(
        "registry-unreachable",
        IMAGE_REASONS,
        _re(r"no such host|dial tcp|i/o timeout|connection refused|TLS handshake timeout"),
        _registry_unreachable,
    ),
    Entry("image-invalid", frozenset({"InvalidImageName"}), _re(r""), _invalid_image),
    Entry("image-other", IMAGE_REASONS, _re(r""), _image_other),
    # crashes: the reason, then the engine's own last words
    Entry("oom", ANY, _re(r"\bOOMKilled\b|more memory than its limit"), _oom),
    Entry(
        "module-missing",
        CRASH_REASONS,
        _re(rf'Module not found "{WORKFLOW_URL}([^"]+)"'),
        _module_missing,
        in_logs=True,
    ),
    Entry(
        "no-default-export",
        CRASH_REASONS,
        _re(r'Node at "([^"]+)" must export a default async function'),
        _no_default,
        in_logs=True,
    ),
    Entry(
        "edges-missing",
        CRASH_REASONS,
        _re(r'missing required field: "edges"'),
        _edges_missing,
        in_logs=True,
    ),
    Entry(
        "failed-in-node",
        CRASH_REASONS,
        _re(rf"{WORKFLOW_URL}(nodes/[^:\s)]+):(\d+):(\d+)"),
        _failed_in_node,
        in_logs=True,
    ),
    Entry("exited", CRASH_REASONS, _re(r"exited with code (-?\d+)"), _exited),
    # waiting that never ended (the timeout's message ends with what it waited on)
    Entry(
        "mount-missing",
        WAITING,
        _re(
            r"MountVolume\.SetUp failed .*: (configmap|secret) "
            r'"([^"]+)" not found'
        ),
        _mount_missing,
    ),
    Entry(
        "mount-key-missing",
        WAITING,
        _re(
            r"references non-existent (?:config |secret )?key: "
            r"(\S+)"
        ),
        _mount_key_missing,
    ),
    Entry(
        "quota",
        WAITING | frozenset({"Forbidden"}),
        _re(r"exceeded quota: ([\w.-]+), (requested: [^\n;]*)"),
        _quota,
    ),
    Entry(
        "pod-security",
        WAITING | frozenset({"Forbidden"}),
        _re(r'violates PodSecurity "([\w-]+):[\w.-]+": ([^\n;]*)'),
        _pod_security,
    ),
    Entry(
        "service-account",
        WAITING,
        _re(r'serviceaccount "[^"]+" not found|error looking up service account'),
        _service_account,
    ),
    Entry(
        "runtime-class",
        WAITING | frozenset({"Forbidden", "RuntimeClass"}),
        _re(r'RuntimeClass "([^"]*)" not found'),
        _runtime_class,
    ),
    Entry("taint", WAITING, _re(r"had untolerated taint(?:\(s\)| (\{[^}]*\}))"), _taint),
    Entry(
        "insufficient", WAITING, _re(r"Insufficient (cpu|memory|ephemeral-storage)"), _insufficient
    ),
    Entry("no-nodes", WAITING, _re(r"no nodes available to schedule pods|0/0 nodes"), _no_nodes),
    Entry("not-alive", frozenset({"Unhealthy"}), _re(r"Liveness probe failed"), _not_alive),
    Entry("not-ready", WAITING, _re(r"(Readiness|Liveness) probe failed"), _not_ready),
    Entry("progress-deadline", frozenset({"ProgressDeadlineExceeded"}), _re(r""), _deadline),
)


def explain(
    failure: Failure, situation: Situation, catalogue: tuple[Entry, ...] | None = None
) -> Explanation | None:
    """The first catalogue entry that recognises the failure, or None."""
    for entry in CATALOGUE if catalogue is None else catalogue:
        if "*" not in entry.reasons and failure.reason not in entry.reasons:
            continue
        texts = [failure.message, *(failure.last_logs if entry.in_logs else ())]
        for text in texts:
            if m := entry.pattern.search(text):
                return entry.explain(m, failure, situation)
    return None


# --- the API server refusing a request (not a rollout's failure) ---------------------------

PDWATCH_NEEDS = f"pdwatch needs, in its namespace: {described()}"


def _rbac(m: re.Match[str], f: Failure, s: Situation) -> Explanation:
    user, verb, resource, group, namespace = m.groups()
    typed = f"{resource}.{group}" if group else resource
    where = f" in namespace {namespace}" if namespace else " cluster-wide"
    check = f"kubectl auth can-i {verb} {typed}" + (f" -n {namespace}" if namespace else "")
    return Explanation(
        f"the cluster's RBAC does not let {user} {verb} {typed}{where}",
        f"ask for a Role that grants it ({check} checks it); {PDWATCH_NEEDS}",
    )


def _terminating(m: re.Match[str], f: Failure, s: Situation) -> Explanation:
    namespace = m.group(1)
    return Explanation(
        f"the namespace {namespace} is being deleted",
        f"wait until kubectl get namespace {namespace} says NotFound (a namespace goes once "
        "everything in it is gone), then deploy again with --create-namespace; or deploy "
        "to another one with -n",
    )


def _context_flag(s: Situation) -> str:
    """` --context NAME` for a kubectl command aimed at pdwatch's cluster ("" unknown)."""
    return f" --context {s.context}" if s.context else ""


def _namespace_missing(m: re.Match[str], f: Failure, s: Situation) -> Explanation:
    namespace = m.group(1)
    return Explanation(
        f"the namespace {namespace} does not exist",
        f"pass --create-namespace, or kubectl{_context_flag(s)} create namespace {namespace}",
    )


API_CATALOGUE: tuple[Entry, ...] = (
    Entry(
        "forbidden",
        ANY,
        _re(
            r'is forbidden: User "([^"]+)" cannot ([\w]+) resource "([^"]+)" in API group '
            r'"([^"]*)"(?: in the namespace "([^"]+)")?'
        ),
        _rbac,
    ),
    Entry(
        "namespace-terminating",
        ANY,
        _re(r"unable to create new content in namespace (\S+) because it is being terminated"),
        _terminating,
    ),
    Entry("namespace-missing", ANY, _re(r'namespaces "([^"]+)" not found'), _namespace_missing),
)


def explain_error(message: str, situation: Situation) -> Explanation | None:
    """What a request the API server refused means, or None."""
    return explain(Failure("", message), situation, API_CATALOGUE)


def explain_event(event: events.Event, situation: Situation) -> events.Explained | None:
    """An Explained event for a RolloutFailed or an Error the catalogues know, else None."""
    found: Explanation | None = None
    if isinstance(event, events.RolloutFailed):
        failure = Failure(event.reason, event.message, event.pod, event.last_logs)
        found = explain(failure, situation)
    elif isinstance(event, events.Error):
        found = explain_error(event.message, situation)
    return events.Explained(found.what, found.fix) if found else None


def explaining(
    emit: Callable[[events.Event], None], situation: Situation
) -> Callable[[events.Event], None]:
    """`emit` that follows each failure it can explain with its explanation."""

    def emit_explained(event: events.Event) -> None:
        emit(event)
        if (explained := explain_event(event, situation)) is not None:
            emit(explained)

    return emit_explained


ENGINE_IMAGES = [DEFAULT_IMAGE, "tentacular-engine:latest"]


def _registry(image: str) -> str:
    first = image.split("/", 1)[0] if "/" in image else ""
    return first if ("." in first or ":" in first or first == "localhost") else "docker.io"
