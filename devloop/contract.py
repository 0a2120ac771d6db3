"""The Tentacular format's `contract` and `metadata` sections → typed values, or every
problem with its line (TENTACULAR.md §6).

A contract says what a workflow talks to: each dependency's protocol, host and port (the
Deno permission flags and the NetworkPolicy are derived from them), `dynamic-target`
ones with a CIDR and ports, and extra egress CIDRs. Validation follows the reference's:
its errors stop a deploy there too, an unknown protocol is only a warning. Pure: the
nodes come from the workflow's own parse.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from devloop.problems import WARNING, Problem
from devloop.yamlsource import Source, duplicate_keys, is_null

IDENT_RE = re.compile(r"[a-z][a-z0-9_-]*")
AUTH_SECRET_RE = re.compile(r"[a-z][a-z0-9_-]*\.[a-z][a-z0-9_-]*")
PORT_SPEC_RE = re.compile(r"([0-9]+)(?:/([A-Za-z]+))?")
DEFAULT_PORTS = {"https": 443, "postgresql": 5432, "nats": 4222}
KNOWN_PROTOCOLS = ("https", "postgresql", "nats", "blob", "jsr", "npm")
HOST_REQUIRED = ("https", "postgresql", "nats", "blob")
FIELDS_REQUIRED = {"postgresql": ("database", "user"), "nats": ("subject",), "blob": ("container",)}
MODULE_PROTOCOLS = ("jsr", "npm")  # fetched through the module proxy, never directly
DYNAMIC = "dynamic-target"
METADATA_TEXT = ("owner", "team", "environment")


@dataclass(frozen=True)
class Dependency:
    name: str
    protocol: str
    host: str = ""
    port: int | None = None
    version: str = ""  # jsr and npm: the version the import map pins
    type: str = ""  # "" or "dynamic-target"
    cidr: str = ""
    dyn_ports: tuple[str, ...] = ()
    scanned: bool = False  # found in the node sources, not declared

    @property
    def effective_port(self) -> int | None:
        """The declared port, else the protocol's default; None: no network rule."""
        return self.port if self.port is not None else DEFAULT_PORTS.get(self.protocol)


@dataclass(frozen=True)
class Egress:
    """`networkPolicy.additionalEgress[]`: a CIDR, with ports or (none given) all ports."""

    cidr: str
    ports: tuple[str, ...] = ()


@dataclass(frozen=True)
class Contract:
    dependencies: tuple[Dependency, ...] = ()
    additional_egress: tuple[Egress, ...] = ()

    @property
    def dynamic(self) -> bool:
        return any(d.type == DYNAMIC for d in self.dependencies)

    def with_scanned(self, found: list[Dependency]) -> Contract:
        """The contract plus every scanned module whose protocol and package is not
        declared already (the reference's import scan)."""
        declared = {(d.protocol, d.host) for d in self.dependencies}
        extra = [d for d in found if (d.protocol, d.host) not in declared]
        unique = list({(d.protocol, d.host): d for d in extra}.values())
        return replace(self, dependencies=(*self.dependencies, *unique))


@dataclass(frozen=True)
class Metadata:
    """`metadata`: what the `tentacular.dev/*` annotations carry."""

    owner: str = ""
    team: str = ""
    tags: tuple[str, ...] = ()
    environment: str = ""

    @property
    def given(self) -> bool:
        """Whether any field was written."""
        return self != Metadata()


def port_spec(text: str) -> tuple[int, str] | None:
    """`"443/TCP"`, `"53/udp"`, `"8080"` → (port, upper-case protocol, TCP by default)."""
    match = PORT_SPEC_RE.fullmatch(text.strip())
    if match is None:
        return None
    port, proto = int(match.group(1)), (match.group(2) or "TCP").upper()
    if not 1 <= port <= 65535 or proto not in ("TCP", "UDP", "SCTP"):
        return None
    return port, proto


def _valid_cidr(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return "/" in text


class _Reader:
    def __init__(self, source: Source) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def error(self, node: Node, message: str, severity: str = "error") -> None:
        self.problems.append(self.source.problem(node, message, severity))

    def mapping(self, node: Node, what: str) -> dict[str, tuple[ScalarNode, Node]] | None:
        if not isinstance(node, MappingNode):
            self.error(node, f"{what} must be a mapping")
            return None
        self.problems += duplicate_keys(node, self.source)
        out: dict[str, tuple[ScalarNode, Node]] = {}
        for key, value in node.value:
            if isinstance(key, ScalarNode):
                out.setdefault(str(key.value), (key, value))
            else:
                self.error(key, f"{what}: keys must be plain strings")
        return out

    def text(self, f: dict[str, tuple[ScalarNode, Node]], key: str, what: str) -> str:
        """A scalar field's text as written, "" when absent or null."""
        if key not in f or is_null(f[key][1]):
            return ""
        node = f[key][1]
        if not isinstance(node, ScalarNode):
            self.error(node, f"{what}.{key} must be a string")
            return ""
        return str(node.value)

    def strings(self, node: Node, what: str) -> tuple[str, ...] | None:
        if is_null(node):
            return ()
        if not isinstance(node, SequenceNode):
            self.error(node, f"{what} must be a list")
            return None
        out = []
        for item in node.value:
            if not isinstance(item, ScalarNode) or is_null(item):
                self.error(item, f"{what} entries must be strings")
                continue
            out.append(str(item.value))
        return tuple(out)

    def ports(self, node: Node, what: str) -> tuple[str, ...]:
        specs = self.strings(node, what) or ()
        for item, spec in zip(_items(node), specs, strict=False):
            if port_spec(spec) is None:
                self.error(
                    item,
                    f'{what}: {spec!r} is not "port[/PROTOCOL]" (e.g. "443/TCP", "53/UDP", '
                    '"8080"; port 1-65535, protocol TCP, UDP or SCTP)',
                )
        return specs

    def contract(self, node: Node) -> Contract | None:
        f = self.mapping(node, "contract")
        if f is None:
            return None
        version = self.text(f, "version", "contract")
        if version != "1":
            where = f["version"][1] if "version" in f else node
            got = version or "(missing)"
            self.error(where, f'contract.version must be "1", got: {got}')
        deps: list[Dependency] = []
        if "dependencies" in f and not is_null(f["dependencies"][1]):
            declared = self.mapping(f["dependencies"][1], "contract.dependencies")
            for name, (key, value) in (declared or {}).items():
                dep = self.dependency(name, key, value)
                if dep is not None:
                    deps.append(dep)
        egress: list[Egress] = []
        if "networkPolicy" in f and not is_null(f["networkPolicy"][1]):
            policy = self.mapping(f["networkPolicy"][1], "contract.networkPolicy")
            if policy and "additionalEgress" in policy:
                egress = self.additional_egress(policy["additionalEgress"][1])
        return Contract(tuple(deps), tuple(egress))

    def dependency(self, name: str, key: ScalarNode, node: Node) -> Dependency | None:
        what = f"contract.dependencies.{name}"
        if IDENT_RE.fullmatch(name) is None:
            self.error(key, f"dependency name {name!r} must match ^{IDENT_RE.pattern}$")
        f = self.mapping(node, what)
        if f is None:
            return None
        protocol = self.text(f, "protocol", what)
        if not protocol:
            self.error(node, f"{what}.protocol is required")
            return None
        kind = self.text(f, "type", what)
        host = self.text(f, "host", what)
        port = self.port(f, what)
        cidr = ""
        dyn_ports: tuple[str, ...] = ()
        if kind == DYNAMIC:
            cidr = self.text(f, "cidr", what)
            if not cidr:
                self.error(node, f"{what}: a dynamic-target dependency needs cidr")
            elif not _valid_cidr(cidr):
                self.error(f["cidr"][1], f"{what}.cidr {cidr!r} is not a valid CIDR")
            if "dynPorts" not in f or is_null(f["dynPorts"][1]):
                self.error(node, f"{what}: a dynamic-target dependency needs dynPorts")
            else:
                dyn_ports = self.ports(f["dynPorts"][1], f"{what}.dynPorts")
        else:
            if protocol not in KNOWN_PROTOCOLS:
                self.error(
                    f["protocol"][1],
                    f"{what}.protocol {protocol!r} is not one the reference knows "
                    f"({', '.join(KNOWN_PROTOCOLS)}): no network rule is derived from it",
                    WARNING,
                )
            if protocol in HOST_REQUIRED and not host:
                self.error(node, f"{what}: host is required for protocol {protocol}")
            for needed in FIELDS_REQUIRED.get(protocol, ()):
                if not self.text(f, needed, what):
                    self.error(node, f"{what}: {needed} is required for protocol {protocol}")
        if "auth" in f and not is_null(f["auth"][1]):
            self.auth(f["auth"][1], f"{what}.auth")
        version = self.text(f, "version", what)
        return Dependency(name, protocol, host, port, version, kind, cidr, tuple(dyn_ports))

    def port(self, f: dict[str, tuple[ScalarNode, Node]], what: str) -> int | None:
        if "port" not in f or is_null(f["port"][1]):
            return None
        node = f["port"][1]
        text = node.value if isinstance(node, ScalarNode) else None
        if not isinstance(text, str) or not text.isdigit() or not 1 <= int(text) <= 65535:
            self.error(node, f"{what}.port must be a whole number from 1 to 65535")
            return None
        return int(text)

    def auth(self, node: Node, what: str) -> None:
        f = self.mapping(node, what)
        if f is None:
            return
        secret = self.text(f, "secret", what)
        if not secret:
            self.error(node, f'{what}.secret is required ("<service>.<key>" of .secrets.yaml)')
        elif AUTH_SECRET_RE.fullmatch(secret) is None:
            self.error(
                f["secret"][1],
                f'{what}.secret {secret!r} must be "<service>.<key>" (^{AUTH_SECRET_RE.pattern}$)',
            )

    def additional_egress(self, node: Node) -> list[Egress]:
        what = "contract.networkPolicy.additionalEgress"
        if is_null(node):
            return []
        if not isinstance(node, SequenceNode):
            self.error(node, f"{what} must be a list")
            return []
        out = []
        for i, item in enumerate(node.value):
            f = self.mapping(item, f"{what}[{i}]")
            if f is None:
                continue
            cidr = self.text(f, "toCIDR", f"{what}[{i}]")
            if not cidr:
                self.error(item, f"{what}[{i}].toCIDR is required")
                continue
            if not _valid_cidr(cidr):
                self.error(f["toCIDR"][1], f"{what}[{i}].toCIDR {cidr!r} is not a valid CIDR")
                continue
            ports = self.ports(f["ports"][1], f"{what}[{i}].ports") if "ports" in f else ()
            out.append(Egress(cidr, ports))
        return out

    def metadata(self, node: Node) -> Metadata:
        f = self.mapping(node, "metadata")
        if f is None:
            return Metadata()
        values = {key: _clean(self.text(f, key, "metadata")) for key in METADATA_TEXT}
        tags: tuple[str, ...] = ()
        if "tags" in f:
            written = self.strings(f["tags"][1], "metadata.tags") or ()
            tags = tuple(tag for tag in map(_clean, written) if tag)
        return Metadata(values["owner"], values["team"], tags, values["environment"])


def _items(node: Node) -> list[Node]:
    return list(node.value) if isinstance(node, SequenceNode) else []


def _clean(text: str) -> str:
    """As the reference cleans an annotation value: CR and LF removed, then trimmed."""
    return text.replace("\r", "").replace("\n", "").strip()


def parse_contract(node: Node, source: Source) -> tuple[Contract | None, list[Problem]]:
    reader = _Reader(source)
    contract = None if is_null(node) else reader.contract(node)
    return contract, reader.problems


def parse_metadata(node: Node, source: Source) -> tuple[Metadata, list[Problem]]:
    reader = _Reader(source)
    metadata = Metadata() if is_null(node) else reader.metadata(node)
    return metadata, reader.problems


# A quoted `jsr:` or `npm:` specifier anywhere in a node's source (the reference's scan).
SPECIFIER_RE = re.compile(r"""["'](jsr|npm):([^"'\s]+)["']""")


def split_package(spec: str) -> tuple[str, str]:
    """`@db/postgres@0.19.5/mod.ts` → (`@db/postgres`, `0.19.5`); `lodash` → (`lodash`, "")."""
    scoped = spec.startswith("@")
    parts = spec.split("/")
    head = parts[:2] if scoped else parts[:1]
    package = "/".join(head)
    name, _, version = package.rpartition("@") if package.count("@") > scoped else (package, "", "")
    if not version:
        return package, ""
    return name, version


def scan_imports(sources: dict[str, str]) -> list[Dependency]:
    """The modules the node files (path → text) import by `jsr:`/`npm:` specifier, as
    dependencies the import map and flags need, in file then position order."""
    found: dict[tuple[str, str], Dependency] = {}
    for path in sorted(sources):
        for match in SPECIFIER_RE.finditer(sources[path]):
            protocol, (package, version) = match.group(1), split_package(match.group(2))
            key = f"__scanned__{protocol}__{package.replace('/', '_')}"
            found.setdefault(
                (protocol, package),
                Dependency(key, protocol, package, None, version, scanned=True),
            )
    return list(found.values())
