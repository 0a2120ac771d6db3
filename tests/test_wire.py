"""What goes over the wire reaches the API server unchanged: every class of code point a
node file may hold, applied by pdwatch and read back byte for byte; and the embedded
cluster reads apply bodies as go-yaml v2 does (so what it accepts, a real API server
accepts too)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from devloop.kube.client import Kube
from devloop.kube.errors import KubeError
from devloop.kube.wire import apply_body
from devloop.sim import EmbeddedCluster, Rule

CODE_POINT_CLASSES = {
    "ascii": "export default async function run() { return 1; }\n",
    "tab-cr-lf": "a\tb\r\nc\rd\n",
    "c0-controls": "nul\x00 bel\x07 esc\x1b us\x1f",
    "del": "before\x7fafter",
    "c1-controls": "pad\x80 csi\x9b apc\x9f",
    "nel-with-spaces": "line one \x85 line two",
    "nbsp-latin1": "caf\xe9\xa0na\xefve",
    "bmp": "€ 漢字 \ud7ff",
    "line-and-paragraph-separators": "a \u2028 b \u2029 c",
    "private-use": "\ue000\uf8ff",
    "bom-inside": "x\ufeffy",
    "replacement-and-non-characters": "\ufffd \ufffe \uffff",
    "astral-emoji": "console.log('🚀 deployed ✅');",
    "astral-edges": "\U00010000 \U0001d7d9 \U0010ffff",
    "quotes-and-backslashes": 'say "hi" \\ \\u00e9 \\ud83d',
    "indented-first-line": "    indented\n\tand tabbed\n",
}


def config_map(data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "wire"}, "data": data}


@pytest.fixture
def kube(api_client: client.ApiClient, namespace: str) -> Kube:
    return Kube(api_client, namespace)


@pytest.mark.parametrize("name", sorted(CODE_POINT_CLASSES))
async def test_every_class_of_code_point_round_trips(kube: Kube, name: str) -> None:
    text = CODE_POINT_CLASSES[name]
    applied = await kube.apply(config_map({"nodes__x.ts": text}))
    assert applied["data"]["nodes__x.ts"] == text
    read = await kube.get("ConfigMap", "wire")
    assert read is not None and read["data"]["nodes__x.ts"] == text


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(max_size=200))
def test_any_text_round_trips(api_client: client.ApiClient, namespace: str, text: str) -> None:
    """Any string without surrogates (which UTF-8 files cannot hold) arrives as it was."""
    body = apply_body(config_map({"k": text}))
    response = send_apply(api_client, namespace, body)
    assert response["data"]["k"] == text


def test_the_body_is_raw_utf8_with_escapes_only_where_go_yaml_needs_them() -> None:
    body = apply_body(config_map({"k": "🚀\x7f\x85é"}))
    assert "🚀".encode() in body and "é".encode() in body
    assert b"\\u007f" in body and b"\\u0085" in body
    assert b"\\ud83d" not in body


def send_apply(api_client: client.ApiClient, namespace: str, body: bytes) -> dict[str, Any]:
    """PATCH an apply body as given (bytes are sent unchanged by the client)."""
    request = api_client.param_serialize(
        method="PATCH",
        resource_path=f"/api/v1/namespaces/{namespace}/configmaps/wire",
        query_params=[("fieldManager", "test"), ("force", True)],
        header_params={"Content-Type": "application/apply-patch+yaml"},
        body=body,
    )
    response = api_client.call_api(*request)
    response.read()
    if response.status >= 300:
        raise ApiException.from_response(http_resp=response, body=None, data=None)
    return json.loads(response.data)  # type: ignore[no-any-return]


def status_message(exc: ApiException) -> str:
    return str(json.loads(exc.body)["message"])


def test_go_yaml_refuses_a_json_surrogate_pair_escape(
    api_client: client.ApiClient, namespace: str
) -> None:
    """What the official client sends for a dict body with an emoji (json.dumps, ASCII):
    refused by a real API server (gopkg.in/yaml.v2 scannerc.go)."""
    ascii_json = json.dumps(config_map({"k": "🚀"})).encode()
    assert b"\\ud83d\\ude80" in ascii_json
    with pytest.raises(ApiException) as caught:
        send_apply(api_client, namespace, ascii_json)
    assert caught.value.status == 400
    # one line: go-yaml names no line for an error on the first (kube-apiserver v1.37.2)
    assert status_message(caught.value) == (
        "error decoding patch: error converting YAML to JSON: yaml: "
        "found invalid Unicode character escape code"
    )


@pytest.mark.parametrize("raw", ["\x7f", "\x80", "\x9f", "\ufffe", "\uffff", "\x01"])
def test_go_yaml_refuses_raw_control_characters(
    api_client: client.ApiClient, namespace: str, raw: str
) -> None:
    """gopkg.in/yaml.v2 readerc.go, yaml_parser_update_buffer."""
    body = ('{"apiVersion":"v1","kind":"ConfigMap","data":{"k":"a' + raw + 'b"}}').encode()
    with pytest.raises(ApiException) as caught:
        send_apply(api_client, namespace, body)
    assert caught.value.status == 400
    assert status_message(caught.value).endswith("yaml: control characters are not allowed")


def test_go_yaml_folds_a_raw_nel_in_a_quoted_string(
    api_client: client.ApiClient, namespace: str
) -> None:
    body = (
        '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"wire"},"data":{"k":"a\x85b"}}'
    ).encode()
    assert send_apply(api_client, namespace, body)["data"]["k"] == "a b"


def test_escaped_controls_are_read_as_the_characters(
    api_client: client.ApiClient, namespace: str
) -> None:
    body = (
        b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"wire"},'
        b'"data":{"k":"\\u007f\\u0085\\U0001d7d9"}}'
    )
    assert send_apply(api_client, namespace, body)["data"]["k"] == "\x7f\x85\U0001d7d9"


async def test_errors_never_repeat_file_contents_or_secrets(
    kube: Kube, cluster: EmbeddedCluster
) -> None:
    """An API server may quote what it refuses; pdwatch cuts it short and takes the
    object's data out, whatever the message."""
    node_file = "export default async function run() {\n" + "  // padding\n" * 400 + "}\n"
    secret = base64.b64encode(b"sk_live_1234567890").decode()
    for kind, data, echoed in (
        ("ConfigMap", {"nodes__x.ts": node_file}, node_file),
        ("Secret", {"token": secret}, "sk_live_1234567890"),
    ):
        cluster.add_fault(
            Rule(method="PATCH", status=422, message=f'{kind} "wire" is invalid: "{echoed}"')
        )
        manifest = {"apiVersion": "v1", "kind": kind, "metadata": {"name": "wire"}, "data": data}
        with pytest.raises(KubeError) as caught:
            await kube.apply(manifest)
        text = str(caught.value)
        assert len(text) <= 450, len(text)
        assert "padding" not in text and "sk_live" not in text and secret not in text
