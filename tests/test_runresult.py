"""The lines pdwatch puts above the engine's answer to a run (devloop.runresult). The
messages are Deno 2.9's own, as printed by tests/test_engine_image.py's engine runs and
by `deno run` of a fetch to each kind of unreachable host."""

from __future__ import annotations

import pytest

from devloop.runresult import outside_call_hint, summarize


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("fetch failed", "an outside call (fetch) failed; the engine keeps no cause"),
        (
            'Requires net access to "nothing.invalid:80", run again with the --allow-net flag',
            "the engine's Deno permissions do not allow nothing.invalid:80",
        ),
        (
            "error sending request for url (http://nothing.invalid/x): client error (Connect): "
            "dns error: failed to lookup address information: Name or service not known",
            "the call to http://nothing.invalid/x failed: its host name does not resolve",
        ),
        (
            "error sending request for url (http://10.0.0.9:81/): client error (Connect): tcp "
            "connect error: Connection refused (os error 111)",
            "the call to http://10.0.0.9:81/ failed: nothing answered",
        ),
        (
            # what the stand-in under a Tentacular import map answered (see test_formats)
            "Import 'http://esm-sh.tentacular-support.svc.cluster.local:8080/jsr/@db/postgres"
            "@0.19.5' failed.\n    0: error sending request for url (http://esm-sh.tentacular-"
            "support.svc.cluster.local:8080/jsr/@db/postgres@0.19.5): client error (Connect): "
            "dns error: failed to lookup address information: Name or service not known",
            "a jsr:/npm: module is loaded through the cluster's module proxy (esm-sh in "
            "namespace tentacular-support",
        ),
        (
            "JSR package manifest for '@db/postgres' failed to load. Requires import access to "
            '"jsr.io:443", run again with the --allow-import flag',
            "the engine's Deno permissions do not allow imports from jsr.io:443",
        ),
        ("no greeting today", None),
        ('Node "n" timed out after 1000ms', None),
    ],
)
def test_what_a_failed_node_s_message_means(message: str, expected: str | None) -> None:
    hint = outside_call_hint(message)
    if expected is None:
        assert hint is None
    else:
        assert hint is not None and hint.startswith(expected), hint


def test_a_successful_run_in_one_line_and_other_answers_in_none() -> None:
    body = {
        "success": True,
        "outputs": {"a": 1, "b": None},
        "errors": {},
        "timing": {"durationMs": 12},
    }
    assert summarize(200, body) == ("ran 2 nodes in 12 ms: all succeeded",)
    assert summarize(503, 'no endpoints available for service "x"') == ()
    assert summarize(200, {"workflow": "x"}) == ()  # not the engine's shape


@pytest.mark.parametrize(
    ("status", "body", "lines"),
    [
        (
            200,
            {"success": True, "outputs": {"a": 1}, "errors": {}, "timing": {"durationMs": 3.5}},
            ("ran 1 node in 3.5 ms: all succeeded",),
        ),
        (  # no timing, no outputs: the count still right, no time made up
            200,
            {"success": True, "outputs": "not a map", "timing": {"durationMs": "soon"}},
            ("ran 0 nodes: all succeeded",),
        ),
        (
            500,
            {
                "success": False,
                "outputs": {"fetch": {"n": 1}},
                "errors": {"store": "fetch failed", "notify": "no greeting today"},
                "timing": {"durationMs": 40},
            },
            (
                "ran 3 nodes in 40 ms: 2 failed (HTTP 500; a stage with a failed node is the "
                "last to run)",
                "store: fetch failed",
                "  → an outside call (fetch) failed; the engine keeps no cause: the host may not "
                "resolve or answer from the pod's network (on the embedded cluster, a pod's "
                "network is this machine's)",
                "notify: no greeting today",
            ),
        ),
        (
            500,
            {"success": False, "outputs": {}, "errors": {"only": 7}},
            (
                "ran 1 node: 1 failed (HTTP 500; a stage with a failed node is the last to run)",
                "only: 7",
            ),
        ),
        (200, {"success": "yes"}, ()),
    ],
)
def test_what_a_run_did(status: int, body: object, lines: tuple[str, ...]) -> None:
    assert summarize(status, body) == lines


@pytest.mark.parametrize(
    ("message", "hint"),
    [
        (
            "Import 'http://esm-sh.ns-1.svc.cluster.local:8080/x' failed.",
            "a jsr:/npm: module is loaded through the cluster's module proxy (esm-sh in "
            "namespace ns-1, as the import map says), and none answers here: `tntc cluster "
            "install` sets it up on a cluster; the embedded cluster and pdwatch's node have none",
        ),
        (
            'Requires import access to "esm.sh:443"',
            "the engine's Deno permissions do not allow imports from esm.sh:443: modules load "
            "through the module proxy (declare the module in the contract)",
        ),
        (
            'Requires net access to "api.github.com:443"',
            "the engine's Deno permissions do not allow api.github.com:443: the workflow's "
            "contract (its dependencies) decides the --allow-net list",
        ),
        (
            "error sending request for url (https://a.example/): operation timed out",
            "the call to https://a.example/ failed: no answer in time from the outside host",
        ),
        (
            "error sending request for url (https://a.example/): invalid peer certificate",
            "the call to https://a.example/ failed: the TLS handshake failed (a proxy, or the "
            "host's certificate)",
        ),
        (
            "error sending request for url (https://a.example/): Network is unreachable",
            "the call to https://a.example/ failed: nothing answered: the host is down or "
            "unreachable from the pod's network",
        ),
        (
            "error sending request for url (https://a.example/): something else",
            "the call to https://a.example/ failed",
        ),
        ("the fetch failed later", None),
    ],
)
def test_each_hint_in_full(message: str, hint: str | None) -> None:
    assert outside_call_hint(message) == hint
