"""A workflow directory → the exact objects that carry it (a Bundle), or every problem.

Pure: it reads the directory and nothing else (no network, no clock), so the
same files always give the same Bundle and the same content hash.
"""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path

from devloop import manifests, names, tentacular
from devloop.codefiles import CODE_FILE_MAX, CodeFile, list_code, read_code_files
from devloop.contract import Contract, scan_imports
from devloop.history import CHANGED_MAX_CHARS
from devloop.image import DEFAULT_IMAGE, MARKER_DIRS, TENTACULAR_IMAGE, ImageChoice, resolve_image
from devloop.manifests import Manifest
from devloop.objectsize import ETCD_REQUEST_LIMIT, too_large
from devloop.problems import Problem
from devloop.safefiles import Refusal, read_inside
from devloop.secrets import SECRET_MAX_BYTES, SECRETS_FILE, encode, read_secrets
from devloop.sharedsecrets import read_shared_secrets
from devloop.tscheck import import_problems, syntax_problems
from devloop.wfformat import PIPEDREAMER, TENTACULAR, FormatChoice, detect
from devloop.workflow import (
    WORKFLOW_FILE,
    Workflow,
    check_node_paths,
    parse_workflow,
    parse_workflow_partial,
)
from devloop.yamlsource import Source

CODE_LIMIT_BYTES = 900 * 1024  # 921,600: the project's margin below the 1 MiB object limit
DEFAULT_RUNTIME_CLASS = "gvisor"


LOCAL_SERVERS = ("127.0.0.1", "localhost", "[::1]")


def kind_cluster(context: str, server: str) -> str | None:
    """The kind cluster a context is, by the reference's test: its name starts with
    `kind-` and its server is on this machine. None for any other."""
    if context.startswith("kind-") and any(host in server for host in LOCAL_SERVERS):
        return context.removeprefix("kind-")
    return None


@dataclass(frozen=True)
class RenderOptions:
    namespace: str = "default"
    image: str | None = None  # --image; None means resolve from the directory
    runtime_class: str = DEFAULT_RUNTIME_CLASS  # "" omits runtimeClassName
    format: str | None = None  # --format; None: read from the workflow (wfformat.detect)
    runtime_class_given: bool = True  # False: the default, which a kind cluster drops

    def for_cluster(
        self, namespace: str, context: str, server: str
    ) -> tuple[RenderOptions, str | None]:
        """The options for a connection: its namespace; on a local kind cluster the default
        RuntimeClass dropped (stock kind has no gVisor; the Tentacular reference drops it
        too), with the line that says so."""
        options = replace(self, namespace=namespace)
        name = kind_cluster(context, server)
        if name is None or self.runtime_class_given or not self.runtime_class:
            return options, None
        note = (
            f"kind cluster {name!r}: no RuntimeClass (stock kind has no {self.runtime_class}); "
            "--runtime-class NAME sets one"
        )
        return replace(options, runtime_class=""), note


NO_SIGN = FormatChoice(PIPEDREAMER, "no sign of the Tentacular format")


@dataclass(frozen=True)
class Bundle:
    """Everything one deploy applies. The Secret is kept out of repr so it never prints."""

    workflow: Workflow
    namespace: str
    image: ImageChoice
    files: tuple[CodeFile, ...]
    content_hash: str
    config_map: Manifest
    code_snapshot: Manifest  # what the pods mount: an immutable copy named by the content
    deployment: Manifest
    service: Manifest
    cronjobs: tuple[Manifest, ...]
    secret: Manifest | None = field(default=None, repr=False)
    format: FormatChoice = NO_SIGN
    import_map: Manifest | None = None  # the Tentacular format's `<wf>-import-map`
    network_policy: Manifest | None = None  # and its `<wf>-netpol`, from the contract
    warnings: tuple[Problem, ...] = ()  # and notes: shown, but nothing stops the deploy
    source: str = ""  # host:directory it was rendered from (plan.SOURCE_ANNOTATION)

    @property
    def code_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def stored_bytes(self) -> int:
        """The ConfigMap's data as the API server counts it toward 1 MiB: keys and values."""
        return sum(f.stored_size for f in self.files)

    def manifests(self) -> list[Manifest]:
        """In apply order: the Secret and ConfigMaps exist before the pods that mount them."""
        head = [self.secret] if self.secret else []
        maps = [self.import_map] if self.import_map else []
        policy = [self.network_policy] if self.network_policy else []
        return [
            *head,
            self.config_map,
            self.code_snapshot,
            *maps,
            self.service,
            *policy,
            *self.cronjobs,
            self.deployment,
        ]

    def printable_manifests(self) -> list[Manifest]:
        """The manifests with Secret values redacted."""
        return [manifests.redact(m) if m["kind"] == "Secret" else m for m in self.manifests()]


RenderResult = Bundle | list[Problem]


def content_hash(files: list[CodeFile] | tuple[CodeFile, ...]) -> str:
    """SHA-256 over the keys and values, length-prefixed so no two file sets collide."""
    digest = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.key):
        key, value = f.key.encode(), f.text.encode("utf-8")
        digest.update(b"%d:%s%d:%s" % (len(key), key, len(value), value))
    return digest.hexdigest()


def render(workflow_dir: Path, options: RenderOptions | None = None) -> RenderResult:
    options = options or RenderOptions()
    shown = str(workflow_dir)
    wf_file = os.path.join(shown, WORKFLOW_FILE)
    problems: list[Problem] = []

    listing = list_code(workflow_dir)
    files, file_problems = read_code_files(workflow_dir, shown, listing)
    problems += file_problems
    wf_text = next((f.text for f in files if f.path == WORKFLOW_FILE), None)
    workflow: Workflow | None = None
    node_paths: list[str] = []
    if wf_text is not None:
        parsed = parse_workflow_partial(wf_text, wf_file)
        workflow = parsed.workflow
        problems += parsed.problems
        node_paths = [node.path for node in parsed.nodes]
        carried = {f.path for f in files}  # read fine: existing regular files inside
        problems += check_node_paths(
            parsed.nodes, workflow_dir, wf_file, set(listing.paths), carried, wf_text
        )
    if workflow is not None and wf_text is not None:
        problems += _generated_name_problems(workflow, Source(wf_file, wf_text))
    problems += size_problems(files, shown)
    unparsed = syntax_problems(files, shown, node_paths)
    problems += unparsed
    problems += import_problems(files, shown, skip={p.file for p in unparsed})
    sources = {f.path: f.text for f in files if f.path.endswith(".ts")}
    choice = (
        FormatChoice(options.format or PIPEDREAMER, "--format" if options.format else "unread")
        if workflow is None
        else format_of(workflow_dir, workflow, sources, options.format)
    )
    fmt = choice.format
    secret_data, secret_problems = local_secrets(workflow_dir, shown, fmt)
    problems += secret_problems
    default_image = TENTACULAR_IMAGE if fmt == TENTACULAR else DEFAULT_IMAGE
    image, image_problems = resolve_image(workflow_dir, options.image, default_image)
    problems += image_problems
    problems += [
        Problem("--namespace", f"{options.namespace!r}: {e}")
        for e in names.dns1123_label(options.namespace)
    ]
    if options.runtime_class:
        problems += [
            Problem("--runtime-class", f"{options.runtime_class!r}: {e}")
            for e in names.dns1123_subdomain(options.runtime_class)
        ]

    if any(p.is_error for p in problems) or workflow is None or image is None:
        return problems
    ns = options.namespace
    digest = content_hash(files)
    data = {f.key: f.text for f in files}
    contract = effective_contract(workflow.contract, sources) if fmt == TENTACULAR else None
    config_map = manifests.code_config_map(workflow, ns, data, digest, fmt)
    snapshot = manifests.code_snapshot(workflow, ns, data, digest, fmt)
    deployment = manifests.deployment(
        workflow, ns, image.image, options.runtime_class, snapshot, digest, fmt, contract
    )
    service = manifests.service(workflow, ns, fmt)
    cronjobs = tuple(manifests.cronjobs(workflow, ns, fmt))
    secret = manifests.secret(workflow, ns, encode(secret_data), fmt) if secret_data else None
    if fmt == TENTACULAR:
        why = tentacular.webhook_secret_problem(workflow, contract, secret_data)
        if why:
            return [*problems, Problem(wf_file, why)]
    import_map = tentacular.import_map(workflow, ns, contract) if fmt == TENTACULAR else None
    policy = tentacular.network_policy(workflow, ns, contract) if contract is not None else None
    # The code's copies in the history carry a list of the changed files besides.
    sized = [(config_map, CHANGED_MAX_CHARS), (snapshot, 0), (deployment, 0), (secret, 0)]
    problems += [
        Problem(shown, object_too_large(manifest, size, len(files) - 1))
        for manifest, extra in sized
        if manifest is not None and (size := too_large(manifest, extra)) is not None
    ]
    if any(p.is_error for p in problems):
        return problems
    return Bundle(
        workflow=workflow,
        namespace=ns,
        image=image,
        files=tuple(files),
        content_hash=digest,
        config_map=config_map,
        code_snapshot=snapshot,
        deployment=deployment,
        service=service,
        cronjobs=cronjobs,
        secret=secret,
        format=choice,
        import_map=import_map,
        network_policy=policy,
        warnings=tuple(problems),
        source=f"{socket.gethostname()}:{os.path.realpath(workflow_dir)}",
    )


def object_too_large(manifest: Manifest, size: int, code_files: int) -> str:
    kind, name = manifest["kind"], manifest["metadata"]["name"]
    why = (
        f"each of the {code_files:,} code files is a key, stored twice (its data, and "
        "server-side apply's record of who set it)"
        if kind == "ConfigMap"
        else "its keys and values"
        if kind == "Secret"
        else f"its code volume lists each of the {code_files:,} code files"
    )
    return (
        f"{kind} {name} would be about {size:,} bytes as the cluster stores it, over etcd's "
        f"limit of {ETCD_REQUEST_LIMIT:,} bytes for one object: {why}; fewer, larger files "
        "(or shorter paths) take less room"
    )


def size_problems(files: list[CodeFile], shown: str) -> list[Problem]:
    """The code must fit the project's margin below the API server's 1 MiB, counted as the
    API server counts a ConfigMap (ValidateConfigMap: every key's and value's length)."""
    total = sum(f.stored_size for f in files)
    if total <= CODE_LIMIT_BYTES:
        return []
    largest = sorted(files, key=lambda f: f.size, reverse=True)[:3]
    return [
        Problem(
            shown,
            f"workflow code exceeds ConfigMap size limit (900KB): total size is {total} "
            f"bytes (file contents and ConfigMap keys, as the API server counts them; limit "
            f"{CODE_LIMIT_BYTES:,}); largest: "
            + ", ".join(f"{f.path} ({f.size:,} bytes)" for f in largest),
        )
    ]


def _generated_name_problems(wf: Workflow, source: Source) -> list[Problem]:
    """Names derived from the workflow's must be valid for their kinds before anything is
    sent; each problem points at the field the name comes from."""
    checks: list[tuple[str, str, list[str]]] = [
        ("Deployment", wf.name, names.dns1123_subdomain(wf.name)),
        ("Service", wf.name, names.dns1035_label(wf.name)),
        (
            "ConfigMap",
            manifests.config_map_name(wf),
            names.dns1123_subdomain(manifests.config_map_name(wf)),
        ),
        ("Secret", manifests.secret_name(wf), names.dns1123_subdomain(manifests.secret_name(wf))),
    ]
    for name in manifests.cronjob_names(wf):
        errors = names.dns1123_label(name)
        if len(name) > names.CRONJOB_NAME_MAX:
            errors = [f"must be no more than {names.CRONJOB_NAME_MAX} characters", *errors]
        checks.append(("CronJob", name, errors))
    out = [
        source.at(
            wf.name_line or 0,
            None,
            f"generated {kind} name {name!r} is invalid: {'; '.join(errors)} "
            "(shorten the workflow name)",
        )
        for kind, name, errors in checks
        if errors
    ]
    for key, value in manifests.labels(wf, PIPEDREAMER).items():
        errors = names.label_value(value)
        if errors:
            line = wf.version_line if key.endswith("/version") else wf.name_line
            out.append(
                source.at(line or 0, None, f"label {key}={value!r} is invalid: {'; '.join(errors)}")
            )
    return list(dict.fromkeys(out))


def format_of(
    directory: Path, workflow: Workflow, sources: dict[str, str], override: str | None
) -> FormatChoice:
    """The workflow's format from its signs on disk (wfformat.detect)."""
    markers = {d for d in MARKER_DIRS if os.path.isdir(directory / d)}
    raw = read_inside(directory / SECRETS_FILE, os.path.realpath(directory), SECRET_MAX_BYTES)
    secrets_text = None if isinstance(raw, Refusal) else raw.decode("utf-8", errors="replace")
    return detect(workflow, markers, secrets_text, sources, override)


def local_secrets(
    directory: Path, shown: str, fmt: str
) -> tuple[dict[str, bytes] | None, list[Problem]]:
    """The Secret's data as the format's reference builds it: `$shared` references
    resolved (Tentacular), or the values in `.secrets.yaml` / `.secrets/` (Pipedreamer)."""
    if fmt == TENTACULAR:
        return read_shared_secrets(directory, shown)
    return read_secrets(directory, shown)


def effective_contract(declared: Contract | None, sources: dict[str, str]) -> Contract | None:
    """The contract the reference derives flags and a NetworkPolicy from: the declared one
    plus the `jsr:`/`npm:` modules the code imports (a contract is made for them when none
    is declared). pdwatch scans every deployed .ts file, helpers included (the reference
    scans nodes/*.ts only; a helper's module needs the import map just the same)."""
    scanned = scan_imports(sources)
    if declared is None and not scanned:
        return None
    return (declared or Contract()).with_scanned(scanned)


def read_workflow(directory: Path) -> tuple[Workflow | None, list[Problem]]:
    """workflow.yaml alone (not the node files): enough to know what to tear down and where."""
    shown = str(directory / WORKFLOW_FILE)
    raw = read_inside(directory / WORKFLOW_FILE, None, CODE_FILE_MAX)
    if isinstance(raw, Refusal):
        return None, [Problem(shown, raw.reason)]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, [Problem(shown, "is not valid UTF-8")]
    return parse_workflow(text, shown)


def declared_namespace(directory: Path) -> str | None:
    """`deployment.namespace` of the workflow (the reference's later format): where to
    deploy when -n is not given, before the kubeconfig context's namespace."""
    workflow, _ = read_workflow(directory)
    return workflow.namespace if workflow is not None else None
