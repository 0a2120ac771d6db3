"""A test delivery to the workflow's webhook endpoint (the `w` key; issue 28).

A workflow with a GitHub webhook trigger is hard to try by hand: GitHub must reach it,
and the engine checks the signature when a secret is set. This builds the delivery
GitHub would send, signed as GitHub signs it (HMAC-SHA256 of the raw body with the
`github` secret's `webhook_secret`, `X-Hub-Signature-256: sha256=<hex>`), with the
event and action the first GitHub trigger answers, so the engine matches it and runs the
workflow. Only the Tentacular engine serves `/webhook/<provider>`, GitHub only
(TENTACULAR.md §7); for anything else the answer is why not.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field

from devloop.wfformat import TENTACULAR
from devloop.workflow import Trigger, Workflow

ZEN = "A test delivery from pdwatch."


@dataclass(frozen=True)
class Delivery:
    path: str
    body: bytes
    headers: dict[str, str] = field(repr=False)  # the signature is derived from the secret
    event: str
    signed: bool

    @property
    def what(self) -> str:
        """How the result is titled: `webhook issues/opened (signed)`."""
        action = json.loads(self.body).get("action")
        named = f"{self.event}/{action}" if action else self.event
        return f"webhook {named} ({'signed' if self.signed else 'unsigned: no secret'})"


def github_trigger(workflow: Workflow) -> Trigger | None:
    """The trigger the engine would match first: a webhook for GitHub (or no provider)."""
    for trigger in workflow.triggers:
        if trigger.type == "webhook" and trigger.provider in (None, "github"):
            return trigger
    return None


def webhook_secret(secret_data: dict[str, str] | None) -> str | None:
    """`secrets.github.webhook_secret` from a Secret's base64 `data`, as the engine reads it."""
    raw = (secret_data or {}).get("github")
    if raw is None:
        return None
    try:
        github = json.loads(base64.b64decode(raw))
    except ValueError:
        return None
    value = github.get("webhook_secret") if isinstance(github, dict) else None
    return value if isinstance(value, str) else None


def delivery(
    workflow: Workflow,
    fmt: str,
    secret_data: dict[str, str] | None,
    delivery_id: str,
    payload: dict[str, object] | None = None,
) -> Delivery | str:
    """The delivery to send, or why there is none. `payload` replaces the default one
    (`{"zen", "hook_id"}` with the trigger's first action)."""
    if not any(t.type == "webhook" for t in workflow.triggers):
        return "the workflow has no webhook trigger (t runs it: POST /run)"
    if fmt != TENTACULAR:
        return (
            "the Pipedreamer engine serves no webhook endpoint (the Tentacular engine serves "
            "POST /webhook/github); t runs the workflow: POST /run"
        )
    trigger = github_trigger(workflow)
    if trigger is None:
        return "no webhook trigger for GitHub: the engine serves only /webhook/github"
    event = trigger.event or "ping"
    if payload is None:
        payload = {"zen": ZEN, "hook_id": 0}
        if trigger.actions:
            payload["action"] = trigger.actions[0]
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/pdwatch",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id,
    }
    secret = webhook_secret(secret_data)
    if secret is not None:
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers["X-Hub-Signature-256"] = f"sha256={digest}"
    return Delivery("/webhook/github", body, headers, event, secret is not None)
