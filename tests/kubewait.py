"""Waiting on the embedded cluster through watches (events, not sleeps)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from kubernetes import client, watch

from devloop.kube import plan
from devloop.kube.client import Kube
from tests.target import patience

Predicate = Callable[[Any], bool]


def wait_for(
    list_fn: Callable[..., Any], predicate: Predicate, timeout: float = 15, **kwargs: Any
) -> Any:
    """The first object (from a list, then a watch from its resourceVersion) matching
    `predicate`; fails after `timeout` seconds without one."""
    timeout = patience(timeout)
    listed = list_fn(**kwargs)
    for item in listed.items:
        if predicate(item):
            return item
    w = watch.Watch()
    for event in w.stream(
        list_fn,
        resource_version=listed.metadata.resource_version,
        timeout_seconds=int(timeout),
        **kwargs,
    ):
        if event["type"] != "DELETED" and predicate(event["object"]):
            w.stop()
            return event["object"]
    raise AssertionError(f"nothing matched within {timeout}s")


def wait_for_event(
    api: client.ApiClient,
    namespace: str,
    reason: str,
    involved_name_prefix: str = "",
    timeout: float = 15,
) -> Any:
    core = client.CoreV1Api(api)
    return wait_for(
        core.list_namespaced_event,
        lambda e: e.reason == reason and e.involved_object.name.startswith(involved_name_prefix),
        timeout,
        namespace=namespace,
    )


def is_ready(pod: Any) -> bool:
    conditions = (pod.status.conditions if pod.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


async def rollout_complete(kube: Kube, name: str) -> None:
    """Until the Deployment's own status says its rollout is complete (as `kubectl rollout
    status` reads it): on a real control plane the controllers write it a moment after the
    new pod is Ready, which is where pdwatch's cycle ends."""
    deadline = asyncio.get_running_loop().time() + patience(10)
    while True:
        deployment = await kube.get("Deployment", name)
        if deployment is not None and plan.rollout_status(deployment).state == plan.COMPLETE:
            return
        assert asyncio.get_running_loop().time() < deadline, "the rollout never completed"
        await asyncio.sleep(0.05)


def wait_for_log_line(
    api: client.ApiClient, namespace: str, pod: str, needle: str, timeout: float = 15
) -> str:
    """The first line of the pod's log containing `needle`, read from a followed log
    stream (it arrives as the container prints it)."""
    core = client.CoreV1Api(api)
    response = core.read_namespaced_pod_log(
        pod,
        namespace,
        follow=True,
        _preload_content=False,
        _request_timeout=patience(timeout),
    )
    try:
        for raw in response.stream(decode_content=True):
            for line in raw.decode("utf-8", "replace").splitlines():
                if needle in line:
                    return str(line)
    finally:
        response.release_conn()
    raise AssertionError(f"no line with {needle!r} in the log of {pod}")
