"""Which cluster, context and namespace, resolved as users expect from kubectl.

kubeconfig: `--kubeconfig`, else `KUBECONFIG` (several files, merged), else
`~/.kube/config`; context: `--context`, else the current one; namespace: `-n`, else
the context's, else `default`. `--embedded` starts the embedded cluster instead.
"""

from __future__ import annotations

import os
import ssl
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from kubernetes import client
from kubernetes.aio import client as aio
from kubernetes.config import kube_config
from kubernetes.config.config_exception import ConfigException

from devloop.kube import safety
from devloop.kube.client import Kube, asyncio_client

if TYPE_CHECKING:  # the embedded cluster (aiohttp and all) is imported only when used
    from devloop.sim import EmbeddedCluster, SimSettings


class ConnectionProblem(Exception):
    """The kubeconfig or context cannot be used; the message says what to do."""


@dataclass
class Connection:
    api_client: aio.ApiClient  # one pool of connections for the whole session
    context: str
    server: str
    namespace: str
    embedded: EmbeddedCluster | None = None
    kubes: dict[str, Kube] = field(default_factory=dict)

    def kube(self, namespace: str | None = None) -> Kube:
        """The session's view of one namespace: every workflow deploying there shares it,
        so they share its watches (informers.py) and its connections."""
        wanted = namespace or self.namespace
        if wanted not in self.kubes:
            self.kubes[wanted] = Kube(self.api_client, wanted)
        return self.kubes[wanted]

    async def close(self) -> None:
        from devloop.kube import informers

        for kube in self.kubes.values():
            await informers.of(kube).stop()
        await self.api_client.close()
        if self.embedded is not None:
            self.embedded.stop()


def kubeconfig_paths(flag: Path | None, environ: dict[str, str] | None = None) -> list[Path]:
    env = os.environ if environ is None else environ
    if flag is not None:
        return [flag]
    if env.get("KUBECONFIG"):
        return [Path(p) for p in env["KUBECONFIG"].split(os.pathsep) if p]
    return [Path(env.get("HOME", str(Path.home()))) / ".kube" / "config"]


class Refused(ConnectionProblem):
    """The context is not one pdwatch deploys to without --allow-context."""


def connect(
    kubeconfig: Path | None = None,
    context: str | None = None,
    namespace: str | None = None,
    embedded: bool = False,
    sim_settings: SimSettings | None = None,
    allowed: set[str] | None = None,
) -> Connection:
    """`allowed`: check context safety (safety.py) first, from the kubeconfig alone, before
    its credentials are loaded (an exec plugin would run then)."""
    if embedded:
        from devloop.sim.cluster import CONTEXT as EMBEDDED_CONTEXT
        from devloop.sim.cluster import EmbeddedCluster

        cluster = EmbeddedCluster(sim_settings).start()
        api = asyncio_client(client.Configuration(host=cluster.url))
        return Connection(api, EMBEDDED_CONTEXT, cluster.url, namespace or "default", cluster)
    paths = [p for p in kubeconfig_paths(kubeconfig) if p.exists()]
    if not paths:
        shown = ", ".join(str(p) for p in kubeconfig_paths(kubeconfig))
        raise ConnectionProblem(
            f"no kubeconfig found ({shown}); point --kubeconfig or "
            "KUBECONFIG at one, or try pdwatch with --embedded"
        )
    for path in paths:
        _check_readable(path)
    joined = kube_config.ENV_KUBECONFIG_PATH_SEPARATOR.join(str(p) for p in paths)
    try:
        contexts, active = kube_config.list_kube_config_contexts(joined)
    except ConfigException as exc:
        raise ConnectionProblem(f"kubeconfig {joined}: {exc}") from None
    # kubectl: with several files, the first one to set current-context wins (the
    # Python client's merger lets the last one win).
    first = _first_current_context(paths)
    active = next((c for c in contexts if c["name"] == first), active)
    chosen = _choose(contexts, active, context)
    if allowed is not None:
        server, proxy_url = _cluster_of(paths, chosen)
        reason = safety.refusal(chosen["name"], server, allowed, proxy_url)
        if reason:
            raise Refused(reason)
    configuration = client.Configuration()
    try:
        loader = kube_config.KubeConfigLoader(
            config_dict=kube_config.KubeConfigMerger(joined).config,
            active_context=chosen["name"],
            # None: a relative certificate path is read relative to the file that names
            # it, as kubectl reads KUBECONFIG=a:b (not relative to the first file)
            config_base_path=None,
        )
        loader.load_and_set(configuration)
    except ConfigException as exc:
        raise ConnectionProblem(f"context {chosen['name']!r}: {exc}") from None
    ns = namespace or chosen.get("context", {}).get("namespace") or "default"
    try:
        api = asyncio_client(configuration)  # reads the certificates now, not at first use
    except (ssl.SSLError, OSError) as exc:
        raise ConnectionProblem(
            f"context {chosen['name']!r}: {_certificates(configuration)}: {exc}"
        ) from None
    return Connection(api, chosen["name"], configuration.host, ns)


def _certificates(configuration: client.Configuration) -> str:
    """The certificate files a TLS setup read, for an error about them."""
    named = [configuration.ssl_ca_cert, configuration.cert_file, configuration.key_file]
    return "certificates " + ", ".join(str(f) for f in named if f) if any(named) else "TLS"


MAX_KUBECONFIG_BYTES = 16 * 1024 * 1024


def _check_readable(path: Path) -> None:
    """A kubeconfig pdwatch can read without hanging or crashing: a regular file (a FIFO
    would block the read), of sane size, holding a YAML mapping; else the problem, named."""
    try:
        info = path.stat()
    except OSError as exc:
        raise ConnectionProblem(f"kubeconfig {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise ConnectionProblem(f"kubeconfig {path}: {kind}; point --kubeconfig at a file")
    if info.st_size > MAX_KUBECONFIG_BYTES:
        raise ConnectionProblem(f"kubeconfig {path}: {info.st_size} bytes, too large to be one")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConnectionProblem(f"kubeconfig {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConnectionProblem(f"kubeconfig {path}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConnectionProblem(f"kubeconfig {path}{where}: {problem}") from None
    if data is not None and not isinstance(data, dict):
        raise ConnectionProblem(f"kubeconfig {path}: not a kubeconfig (a YAML mapping)")


def _cluster_of(paths: list[Path], chosen: dict[str, Any]) -> tuple[str, str]:
    """(server, proxy-url) of the context's cluster, read from the files (the first file
    that names the cluster wins, as kubectl merges them)."""
    wanted = (chosen.get("context") or {}).get("cluster")
    for path in paths:
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            continue
        for entry in (data or {}).get("clusters") or [] if isinstance(data, dict) else []:
            if isinstance(entry, dict) and entry.get("name") == wanted:
                cluster = entry.get("cluster") or {}
                return str(cluster.get("server", "")), str(cluster.get("proxy-url", "") or "")
    return "", ""


def _first_current_context(paths: list[Path]) -> str | None:
    for path in paths:
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and data.get("current-context"):
            return str(data["current-context"])
    return None


def _choose(
    contexts: list[dict[str, Any]], active: dict[str, Any] | None, wanted: str | None
) -> dict[str, Any]:
    if wanted:
        for c in contexts:
            if c["name"] == wanted:
                return c
        names = ", ".join(c["name"] for c in contexts) or "none"
        raise ConnectionProblem(f"context {wanted!r} is not in the kubeconfig (contexts: {names})")
    if not active:
        raise ConnectionProblem("the kubeconfig has no current context; pass --context")
    return active
