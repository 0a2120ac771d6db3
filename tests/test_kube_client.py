"""The asyncio client's edges: what no answer looks like."""

from __future__ import annotations


async def test_no_answer_is_said_in_plain_words_and_keeps_its_cause() -> None:
    """A refused connection: the message a person reads, and aiohttp's error as the cause
    a debug log's traceback shows."""
    import socket

    import aiohttp
    from kubernetes import client

    from devloop.kube.client import Kube
    from devloop.kube.errors import Unreachable

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kube = Kube(client.Configuration(host=f"http://127.0.0.1:{port}"), "default")
    try:
        await kube.get("ConfigMap", "x")
    except Unreachable as exc:
        assert str(exc) == "get ConfigMap x: cluster unreachable: Connection refused"
        assert isinstance(exc.__cause__, aiohttp.ClientConnectorError)
    else:
        raise AssertionError("a refused connection was not said")
    finally:
        await kube.close()


def test_a_status_names_what_it_is_about() -> None:
    """KubeError.subject: (resource, name) from a Status's details; nothing when the body
    is not a Status or says nothing of it."""
    import json

    from devloop.kube.errors import from_status

    body = {
        "kind": "Status",
        "reason": "NotFound",
        "message": 'namespaces "team" not found',
        "details": {"name": "team", "kind": "namespaces"},
    }
    assert from_status(404, json.dumps(body)).subject == ("namespaces", "team")
    assert from_status(404, json.dumps({**body, "details": {}})).subject == ("", "")
    assert from_status(404, "404 page not found").subject == ("", "")
