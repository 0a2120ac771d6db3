"""Every rendered manifest validates against the Kubernetes schemas (kubernetes-validate)."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest

from devloop.render import Bundle, RenderOptions, render
from tests.helpers import copy_example, write_tree

EXAMPLES = Path(__file__).parent.parent / "examples"
K8S_VERSION = kubernetes_validate.latest_version()


def _bundles(tmp_path: Path) -> list[Bundle]:
    """Each example in both cluster setups, with secrets as its format keeps them: in the
    file (Pipedreamer), or its .secrets.yaml.example copied and every `$shared` file made
    in the repository's .secrets/ (Tentacular; tmp_path is the repository here)."""
    out = []
    for example in sorted(EXAMPLES.iterdir()):
        target = copy_example(EXAMPLES, example.name, tmp_path)
        if not (target / ".secrets.yaml").exists():
            write_tree(target, {".secrets.yaml": "api:\n  token: t0k3n\n"})
        for options in (RenderOptions(), RenderOptions(namespace="dev", runtime_class="")):
            result = render(target, options)
            assert isinstance(result, Bundle), result
            out.append(result)
    return out


def test_examples_exist() -> None:
    assert len([p for p in EXAMPLES.iterdir() if (p / "workflow.yaml").exists()]) >= 2


def test_every_manifest_validates_strictly(tmp_path: Path) -> None:
    bundles = _bundles(tmp_path)
    kinds = set()
    for bundle in bundles:
        for manifest in bundle.manifests():
            kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
            kinds.add(manifest["kind"])
    assert kinds == {"ConfigMap", "Secret", "Service", "CronJob", "Deployment", "NetworkPolicy"}


def test_schema_check_catches_a_broken_manifest(tmp_path: Path) -> None:
    manifest = dict(_bundles(tmp_path)[0].deployment)
    manifest["spec"] = {**manifest["spec"], "replicas": "one"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
