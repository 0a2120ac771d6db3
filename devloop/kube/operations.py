"""The API operations pdwatch performs, in one place: what the cluster check asks RBAC for
and what the explanation of a refusal lists (tests/test_kube_preflight.py checks the list
against what a whole session requests, recorded by the client).

The session watches each kind it deploys (informers.py). Where a watch of a kind is
refused that pdwatch only reads to prune (a NetworkPolicy, a Secret the workflow no longer
has), it reads that object by name instead: those are not asked for."""

from __future__ import annotations

# (verb, resource, group): what a deploy cycle and its follow-up need.
NEEDED = [
    ("patch", "configmaps", ""),
    ("get", "configmaps", ""),
    ("list", "configmaps", ""),  # the deploy history, the code copies
    ("watch", "configmaps", ""),
    ("patch", "services", ""),
    ("get", "services", ""),
    ("list", "services", ""),
    ("watch", "services", ""),
    ("patch", "deployments", "apps"),
    ("get", "deployments", "apps"),
    ("list", "deployments", "apps"),
    ("watch", "deployments", "apps"),
    ("list", "replicasets", "apps"),
    ("watch", "replicasets", "apps"),
    ("get", "pods", ""),
    ("list", "pods", ""),
    ("watch", "pods", ""),
    ("get", "pods/log", ""),
    ("list", "events", ""),
    ("watch", "events", ""),
]


def needed_operations(
    with_secret: bool, with_cronjobs: bool, with_network_policy: bool = False
) -> list[tuple[str, str, str]]:
    """(verb, resource, group) a deploy and its follow-up need, for the workflow at hand
    (tests/test_kube_preflight.py checks it against what a session really requests)."""
    needed = list(NEEDED)
    if with_secret:
        needed += [("patch", "secrets", ""), ("get", "secrets", "")]
        needed += [("list", "secrets", ""), ("watch", "secrets", "")]
    if with_cronjobs:
        needed += [("patch", "cronjobs", "batch"), ("list", "cronjobs", "batch")]
        needed += [("watch", "cronjobs", "batch")]
    if with_network_policy:
        group = "networking.k8s.io"
        needed += [("patch", "networkpolicies", group), ("get", "networkpolicies", group)]
    return needed


# Deleting: what `--down` and the pruning of what a workflow no longer has do.
REMOVING = [
    ("delete", "configmaps", ""),
    ("delete", "secrets", ""),
    ("delete", "services", ""),
    ("delete", "deployments", "apps"),
    ("delete", "cronjobs", "batch"),
    ("delete", "networkpolicies", "networking.k8s.io"),
]


def described() -> str:
    """Every operation, grouped by resource, for a person asking for a Role."""
    verbs: dict[str, list[str]] = {}
    for verb, resource, group in [*needed_operations(True, True, True), *REMOVING]:
        typed = f"{resource}.{group}" if group else resource
        if verb not in verbs.setdefault(typed, []):
            verbs[typed].append(verb)
    return "; ".join(f"{', '.join(v)} {typed}" for typed, v in verbs.items())
