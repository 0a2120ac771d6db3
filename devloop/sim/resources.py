"""The resource types the embedded API server serves, as discovery describes them."""

from __future__ import annotations

from dataclasses import dataclass

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Resource:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    has_status: bool = False  # a status subresource: main-resource writes keep status
    has_generation: bool = False  # metadata.generation counts spec changes
    subresources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()  # `kubectl get all` asks discovery which are "all"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """How errors name the type: `configmaps`, `deployments.apps`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def singular(self) -> str:
        return self.kind.lower()


RESOURCES = (
    Resource(
        "",
        "v1",
        "Namespace",
        "namespaces",
        namespaced=False,
        short_names=("ns",),
        has_status=True,
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    Resource("", "v1", "Node", "nodes", namespaced=False, short_names=("no",), has_status=True),
    Resource("", "v1", "ConfigMap", "configmaps", short_names=("cm",)),
    Resource("", "v1", "Secret", "secrets"),
    Resource(
        "",
        "v1",
        "Service",
        "services",
        short_names=("svc",),
        has_status=True,
        subresources=("proxy",),
        categories=("all",),
    ),
    Resource(
        "",
        "v1",
        "Pod",
        "pods",
        short_names=("po",),
        has_status=True,
        subresources=("log", "proxy"),
        categories=("all",),
    ),
    Resource("", "v1", "Event", "events", short_names=("ev",)),
    Resource("", "v1", "ServiceAccount", "serviceaccounts", short_names=("sa",)),
    Resource("", "v1", "ResourceQuota", "resourcequotas", short_names=("quota",), has_status=True),
    Resource(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        short_names=("deploy",),
        has_status=True,
        has_generation=True,
        subresources=("scale",),
        categories=("all",),
    ),
    Resource(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        short_names=("rs",),
        has_status=True,
        has_generation=True,
        subresources=("scale",),
        categories=("all",),
    ),
    Resource("batch", "v1", "Job", "jobs", has_status=True, categories=("all",)),
    Resource(
        "batch",
        "v1",
        "CronJob",
        "cronjobs",
        short_names=("cj",),
        has_status=True,
        has_generation=True,
        categories=("all",),
    ),
    # Stored, never enforced: neither the embedded cluster nor pdwatch's node filters
    # traffic (as kind without a policy-enforcing network plugin).
    Resource(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        short_names=("netpol",),
        has_generation=True,
    ),
    Resource("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", namespaced=False),
    # the node's heartbeat (kube-node-lease), and a Service's endpoints as the
    # endpoint-slice controller writes them (what a pod's curl reaches)
    Resource("coordination.k8s.io", "v1", "Lease", "leases"),
    Resource("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    Resource(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        namespaced=False,
        verbs=("create",),
    ),
)

BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
BY_KIND = {(r.api_version, r.kind): r for r in RESOURCES}


def lookup(group: str, version: str, plural: str) -> Resource | None:
    return BY_PATH.get((group, version, plural))


def of_kind(api_version: str, kind: str) -> Resource:
    return BY_KIND[(api_version, kind)]


def groups() -> dict[str, list[str]]:
    """Named groups and their versions (the core group is served at /api)."""
    out: dict[str, list[str]] = {}
    for r in RESOURCES:
        if r.group and r.version not in out.setdefault(r.group, []):
            out[r.group].append(r.version)
    return out
