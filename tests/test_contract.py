"""The Tentacular format's contract as its reference validates it (TENTACULAR.md §6), the
module scan (§1.4), and how a directory's format is recognised."""

from __future__ import annotations

import pytest

from devloop.contract import Contract, Dependency, scan_imports, split_package
from devloop.wfformat import PIPEDREAMER, TENTACULAR, detect
from devloop.workflow import parse_workflow

BASE = (
    "name: wf\nversion: '1.0'\ntriggers:\n  - type: manual\nnodes:\n"
    "  a:\n    path: ./nodes/a.ts\nedges: []\n"
)


def problems_of(contract: str) -> list[str]:
    _, problems = parse_workflow(BASE + contract, "wf.yaml")
    return [f"{p.line}: {p.message}" for p in problems if p.is_error]


def test_a_valid_contract_is_read() -> None:
    wf, problems = parse_workflow(
        BASE + "contract:\n  version: 1\n  dependencies:\n"
        "    db:\n      protocol: postgresql\n      host: pg\n      database: d\n      user: u\n"
        "    feed:\n      protocol: nats\n      host: nats.example\n      subject: s\n"
        "    mod:\n      protocol: npm\n      host: lodash\n      version: 4.17.21\n"
    )
    assert problems == [] and wf is not None and wf.contract is not None
    deps = {d.name: d for d in wf.contract.dependencies}
    assert deps["db"].effective_port == 5432 and deps["feed"].effective_port == 4222
    assert deps["mod"].version == "4.17.21"


@pytest.mark.parametrize(
    ("contract", "wanted"),
    [
        ("contract:\n  version: '2'\n", '10: contract.version must be "1", got: 2'),
        ("contract:\n  dependencies: {}\n", '10: contract.version must be "1", got: (missing)'),
        (
            "contract:\n  version: '1'\n  dependencies:\n    api:\n      host: x\n",
            "13: contract.dependencies.api.protocol is required",
        ),
        (
            "contract:\n  version: '1'\n  dependencies:\n    api:\n      protocol: https\n",
            "13: contract.dependencies.api: host is required for protocol https",
        ),
        (
            "contract:\n  version: '1'\n  dependencies:\n    db:\n      protocol: postgresql\n"
            "      host: pg\n      user: u\n",
            "13: contract.dependencies.db: database is required for protocol postgresql",
        ),
        (
            "contract:\n  version: '1'\n  dependencies:\n    Api:\n      protocol: https\n"
            "      host: x\n",
            "12: dependency name 'Api' must match ^[a-z][a-z0-9_-]*$",
        ),
        (
            "contract:\n  version: '1'\n  dependencies:\n    api:\n      protocol: https\n"
            "      host: x\n      auth:\n        type: bearer-token\n        secret: token\n",
            "17: contract.dependencies.api.auth.secret 'token' must be \"<service>.<key>\" "
            "(^[a-z][a-z0-9_-]*\\.[a-z][a-z0-9_-]*$)",
        ),
        (
            "contract:\n  version: '1'\n  dependencies:\n    t:\n      protocol: https\n"
            "      type: dynamic-target\n      cidr: 10.0.0.0\n      dynPorts: ['443/TCP']\n",
            "15: contract.dependencies.t.cidr '10.0.0.0' is not a valid CIDR",
        ),
        (
            "contract:\n  version: '1'\n  networkPolicy:\n    additionalEgress:\n"
            "      - toCIDR: 10.0.0.0/8\n        ports: ['http']\n",
            "14: contract.networkPolicy.additionalEgress[0].ports: 'http' is not "
            '"port[/PROTOCOL]" (e.g. "443/TCP", "53/UDP", "8080"; port 1-65535, protocol TCP, '
            "UDP or SCTP)",
        ),
    ],
)
def test_contract_errors_name_the_field_and_line(contract: str, wanted: str) -> None:
    assert problems_of(contract) == [wanted]


def test_an_unknown_protocol_is_only_a_warning() -> None:
    wf, problems = parse_workflow(
        BASE + "contract:\n  version: '1'\n  dependencies:\n    q:\n      protocol: amqp\n"
        "      host: mq\n"
    )
    assert wf is not None
    assert [p.severity for p in problems] == ["warning"]


@pytest.mark.parametrize(
    ("spec", "package", "version"),
    [
        ("@db/postgres@0.19.5", "@db/postgres", "0.19.5"),
        ("@std/text@1.0.0/to-kebab-case", "@std/text", "1.0.0"),
        ("@std/text", "@std/text", ""),
        ("lodash@4.17.21", "lodash", "4.17.21"),
        ("lodash", "lodash", ""),
        ("chalk@5/source", "chalk", "5"),
    ],
)
def test_split_package(spec: str, package: str, version: str) -> None:
    assert split_package(spec) == (package, version)


def test_the_scan_finds_quoted_module_specifiers_once_each() -> None:
    found = scan_imports(
        {
            "nodes/b.ts": 'import { Client } from "jsr:@db/postgres@0.19.5";\n',
            "nodes/a.ts": "const m = await import('npm:lodash@4');\n"
            '// "jsr:@db/postgres@0.19.5" again\n',
        }
    )
    assert [(d.name, d.protocol, d.host, d.version) for d in found] == [  # file order
        ("__scanned__npm__lodash", "npm", "lodash", "4"),
        ("__scanned__jsr__@db_postgres", "jsr", "@db/postgres", "0.19.5"),
    ]
    declared = Contract((Dependency("pg", "jsr", "@db/postgres", version="0.20.0"),))
    merged = declared.with_scanned(found)
    assert [d.name for d in merged.dependencies] == ["pg", "__scanned__npm__lodash"]


def test_the_format_is_read_from_the_strongest_sign() -> None:
    wf, _ = parse_workflow(BASE)
    assert wf is not None
    assert detect(wf, set(), None, {}).format == PIPEDREAMER
    assert detect(wf, {".tentacular"}, None, {}).reason == "the directory has .tentacular/"
    assert detect(wf, {".tentacular", ".pipedreamer"}, None, {}).format == PIPEDREAMER
    shared = detect(wf, set(), "# x\napi: '$shared.api'\n", {})
    assert shared.reason == ".secrets.yaml uses $shared references"
    literal = detect(wf, set(), "api: $sharedish\n", {})
    assert literal.format == PIPEDREAMER
    sources = {"nodes/a.ts": 'import type { Context } from "tentacular";\n'}
    assert detect(wf, set(), None, sources).reason == 'nodes/a.ts imports from "tentacular"'
    assert detect(wf, {".tentacular"}, None, {}, "pipedreamer").reason == "--format"
    with_contract, _ = parse_workflow(BASE + "contract:\n  version: '1'\n")
    assert with_contract is not None
    assert detect(with_contract, {".pipedreamer"}, None, {}).format == TENTACULAR
