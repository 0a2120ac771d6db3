"""The test delivery `w` sends (devloop.webhooktest): what GitHub would send, signed as
GitHub signs it, or why there is none."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from devloop.webhooktest import Delivery, delivery, webhook_secret
from devloop.wfformat import PIPEDREAMER, TENTACULAR
from devloop.workflow import Workflow, parse_workflow

HOOKS = """\
name: hooks
version: "1.0"
triggers:
  - type: webhook
    provider: gitlab
  - type: webhook
    name: on-issue
    provider: github
    event: issues
    actions: [opened, edited]
nodes:
  a:
    path: ./nodes/a.ts
edges: []
"""


def workflow(text: str = HOOKS) -> Workflow:
    parsed, problems = parse_workflow(text)
    assert parsed is not None, problems
    return parsed


def secret_data(github: object) -> dict[str, str]:
    return {"github": base64.b64encode(json.dumps(github).encode()).decode()}


def test_the_first_github_trigger_s_event_and_action_signed_with_the_secret() -> None:
    made = delivery(workflow(), TENTACULAR, secret_data({"webhook_secret": "s3"}), "d-1")
    assert isinstance(made, Delivery)
    assert made.path == "/webhook/github"
    assert json.loads(made.body) == {
        "zen": "A test delivery from pdwatch.",
        "hook_id": 0,
        "action": "opened",
    }
    assert made.headers["X-GitHub-Event"] == "issues"
    assert made.headers["X-GitHub-Delivery"] == "d-1"
    wanted = "sha256=" + hmac.new(b"s3", made.body, hashlib.sha256).hexdigest()
    assert made.headers["X-Hub-Signature-256"] == wanted
    assert made.what == "webhook issues/opened (signed)"
    assert "s3" not in repr(made)


def test_without_a_secret_unsigned_and_said() -> None:
    made = delivery(workflow(), TENTACULAR, None, "d-2", {"ref": "main"})
    assert isinstance(made, Delivery)
    assert json.loads(made.body) == {"ref": "main"}
    assert "X-Hub-Signature-256" not in made.headers
    assert made.what == "webhook issues (unsigned: no secret)"


def test_the_engine_s_reading_of_the_secret() -> None:
    assert webhook_secret(secret_data({"webhook_secret": "x"})) == "x"
    assert webhook_secret(secret_data({"token": "x"})) is None
    assert webhook_secret(secret_data("just text")) is None
    assert webhook_secret({"github": base64.b64encode(b"not json").decode()}) is None
    assert webhook_secret(None) is None


def test_why_there_is_none() -> None:
    hooks = workflow()
    assert "Pipedreamer engine serves no webhook endpoint" in str(
        delivery(hooks, PIPEDREAMER, None, "d")
    )
    only_gitlab = (
        HOOKS.split("  - type: webhook\n    name: on-issue")[0]
        + "nodes:"
        + HOOKS.split("nodes:")[1]
    )
    assert delivery(workflow(only_gitlab), TENTACULAR, None, "d") == (
        "no webhook trigger for GitHub: the engine serves only /webhook/github"
    )
    manual = HOOKS.replace(
        HOOKS[HOOKS.index("  - type: webhook") : HOOKS.index("nodes:")], "  - type: manual\n"
    )
    assert delivery(workflow(manual), TENTACULAR, None, "d") == (
        "the workflow has no webhook trigger (t runs it: POST /run)"
    )


def test_the_headers_github_sends() -> None:
    ping = HOOKS.replace("    event: issues\n    actions: [opened, edited]\n", "")
    made = delivery(workflow(ping), TENTACULAR, None, "d-3")
    assert isinstance(made, Delivery)
    assert made.headers == {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/pdwatch",
        "X-GitHub-Event": "ping",
        "X-GitHub-Delivery": "d-3",
    }
    assert json.loads(made.body) == {"zen": "A test delivery from pdwatch.", "hook_id": 0}
    assert made.what == "webhook ping (unsigned: no secret)"


def test_the_reason_for_the_pipedreamer_engine_in_full() -> None:
    assert delivery(workflow(), PIPEDREAMER, None, "d") == (
        "the Pipedreamer engine serves no webhook endpoint (the Tentacular engine serves "
        "POST /webhook/github); t runs the workflow: POST /run"
    )
    assert webhook_secret(secret_data({"webhook_secret": 5})) is None
