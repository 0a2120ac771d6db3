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
