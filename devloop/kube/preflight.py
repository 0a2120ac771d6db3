"""Before the first apply: can this cluster take the deploy? (seed 002, "cluster check")

Each check is a line with ✓ or ✗; a ✗ carries the remediation. Checks after an
unreachable API server are skipped: they could only repeat that failure.
"""

from __future__ import annotations

from dataclasses import dataclass

from devloop.kube.client import Kube
from devloop.kube.errors import KubeError
from devloop.kube.operations import needed_operations


@dataclass(frozen=True)
class Check:
    ok: bool
    title: str
    remedy: str = ""
    reached: bool = True  # False: the API server did not answer (try again later)

    def lines(self) -> list[str]:
        out = [f"  {'✓' if self.ok else '✗'} {self.title}"]
        if self.remedy:
            out.append(f"    -> {self.remedy}")
        return out


async def preflight(
    kube: Kube,
    context: str,
    runtime_class: str,
    with_secret: bool,
    with_cronjobs: bool,
    create_namespace: bool,
    with_network_policy: bool = False,
) -> list[Check]:
    """`with_network_policy`: the workflow has one (the Tentacular format's contract)."""
    ns = kube.namespace
    try:
        version = await kube.server_version()
    except KubeError as exc:
        return [
            Check(
                False,
                f"Kubernetes API not reachable: {exc}",
                unreachable_advice(context),
                reached=False,
            )
        ]
    checks = [Check(True, f"Kubernetes API reachable ({version})")]
    try:
        if await kube.namespace_exists(ns):
            checks.append(Check(True, f'Namespace "{ns}" exists'))
        elif create_namespace:
            made = await kube.create_namespace(ns)
            checks.append(Check(True, f'Namespace "{ns}" {"created" if made else "exists"}'))
        else:
            checks.append(
                Check(
                    False,
                    f'Namespace "{ns}" not found',
                    f"create it: kubectl --context {context} create namespace {ns} "
                    "(or run pdwatch with --create-namespace)",
                )
            )
        if runtime_class:
            if await kube.runtime_class_exists(runtime_class):
                checks.append(Check(True, f'RuntimeClass "{runtime_class}" available'))
            else:
                checks.append(
                    Check(
                        False,
                        f'RuntimeClass "{runtime_class}" not found',
                        "install it in the cluster, or run pdwatch with "
                        '--runtime-class "" to use the default runtime',
                    )
                )
        needed = needed_operations(with_secret, with_cronjobs, with_network_policy)
        denied = [(v, r, g) for v, r, g in needed if not await kube.can(v, r, g)]
    except KubeError as exc:
        return [*checks, Check(False, f"cluster check failed: {exc}")]
    if denied:
        listed = ", ".join(f"{v} {r}{'.' + g if g else ''}" for v, r, g in denied)
        verb, resource, _ = denied[0]
        checks.append(
            Check(
                False,
                f'not allowed in namespace "{ns}": {listed}',
                f"ask for a Role granting these; check with: kubectl auth can-i "
                f"{verb} {resource} -n {ns}",
            )
        )
    else:
        checks.append(Check(True, "permissions to deploy and follow the workflow"))
    return checks


def unreachable_advice(context: str) -> str:
    """What to run when the API server does not answer."""
    return f"is the cluster running? kubectl --context {context} cluster-info"
