"""The node's connection to an API server: a few REST verbs and watches over aiohttp,
authenticated as the kubeconfig says (client certificate, or none for a plain-HTTP
embedded cluster). The node needs nothing else of a client library.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import yaml

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"


class ApiStatus(Exception):
    """The API server refused a request: its HTTP code, reason and message."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code, self.reason, self.message = code, reason, message


def _materialise(entry: dict[str, Any], key: str, directory: Path, stem: str) -> str | None:
    """A kubeconfig's `x` or `x-data` entry as a file path."""
    if entry.get(key):
        return str(entry[key])
    data = entry.get(f"{key}-data")
    if not data:
        return None
    path = directory / stem
    path.write_bytes(base64.b64decode(data))
    return str(path)


class Rest:
    def __init__(self, server: str, ssl_context: ssl.SSLContext | None = None) -> None:
        self.server = server.rstrip("/")
        self.ssl_context = ssl_context
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_kubeconfig(cls, path: Path, context: str | None = None) -> Rest:
        config = yaml.safe_load(path.read_text())
        name = context or config.get("current-context")
        ctx = next(c["context"] for c in config["contexts"] if c["name"] == name)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == ctx["cluster"])
        user: dict[str, Any] = next(
            (u["user"] for u in config.get("users") or [] if u["name"] == ctx["user"]), {}
        )
        server = str(cluster["server"])
        if not server.startswith("https://"):
            return cls(server)
        scratch = Path(tempfile.mkdtemp(prefix="pdwatch-node-"))
        ca = _materialise(cluster, "certificate-authority", scratch, "ca.crt")
        context_ = ssl.create_default_context(cafile=ca)
        cert = _materialise(user, "client-certificate", scratch, "client.crt")
        key = _materialise(user, "client-key", scratch, "client.key")
        if cert and key:
            context_.load_cert_chain(cert, key)
        return cls(server, context_)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=None)
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
        timeout: float = 30.0,
    ) -> Any:
        data = None if body is None else json.dumps(body).encode()
        async with self.session.request(
            method,
            self.server + path,
            data=data,
            params=params,
            headers={"Content-Type": content_type, "Accept": "application/json"},
            ssl=self.ssl_context if self.ssl_context is not None else True,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            text = await response.text()
            if response.status >= 400:
                raise _status(response.status, text)
            return json.loads(text) if text else None

    async def watch(self, path: str, params: dict[str, str]) -> AsyncIterator[dict[str, Any]]:
        """The events of one watch request until the server ends it; an ERROR event (a 410
        among them) is raised as ApiStatus."""
        query = {**params, "watch": "1", "allowWatchBookmarks": "true"}
        async with self.session.get(
            self.server + path,
            params=query,
            ssl=self.ssl_context if self.ssl_context is not None else True,
        ) as response:
            if response.status >= 400:
                raise _status(response.status, await response.text())
            async for line in response.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    raise ApiStatus(
                        int(status.get("code", 500)),
                        str(status.get("reason", "")),
                        str(status.get("message", "")),
                    )
                yield event


def _status(code: int, text: str) -> ApiStatus:
    try:
        status = json.loads(text)
    except ValueError:
        return ApiStatus(code, "", text[:300])
    if not isinstance(status, dict):
        return ApiStatus(code, "", text[:300])
    return ApiStatus(code, str(status.get("reason", "")), str(status.get("message", "")))


async def retrying(what: Any, attempts: int = 5, delay: float = 0.2) -> Any:
    """Await `what()` again after a network error or a server error (5xx, 429)."""
    for attempt in range(attempts):
        try:
            return await what()
        except ApiStatus as exc:
            if (exc.code < 500 and exc.code != 429) or attempt == attempts - 1:
                raise
        except (aiohttp.ClientError, TimeoutError):
            if attempt == attempts - 1:
                raise
        await asyncio.sleep(delay * 2**attempt)
    return None
