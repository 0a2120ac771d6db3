"""Kubernetes name, key and label rules, worded as the API server words them.

Used by the renderer to fail before anything is sent. The embedded cluster has its own
copy of these rules (devloop/sim/apinames.py), so that a mistake here cannot hide on both
sides of the wire; tests compare the two. The messages follow
k8s.io/apimachinery/pkg/util/validation (IsDNS1123Label, IsDNS1123Subdomain,
IsDNS1035Label, IsConfigMapKey, IsQualifiedName, IsValidLabelValue).
"""

from __future__ import annotations

import re

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
CONFIG_MAP_KEY_MAX = 253
LABEL_VALUE_MAX = 63
CRONJOB_NAME_MAX = 52  # Jobs append an 11-character suffix to the CronJob name

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = _LABEL + r"(\." + _LABEL + r")*"
_DNS1035 = r"[a-z]([-a-z0-9]*[a-z0-9])?"
_CONFIG_KEY = r"[-._a-zA-Z0-9]+"
_QNAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"


def _regex_error(what: str, fmt: str, *examples: str) -> str:
    shown = ",  or ".join(f"'{e}'" for e in examples)
    return f"{what} (e.g. {shown}, regex used for validation is '{fmt}')"


def _too_long(limit: int, unit: str = "characters") -> str:
    # kube-apiserver v1.37.2 words a label's and a label value's limit in bytes, a
    # subdomain's in characters (tests/test_differential.py checks each against it)
    return f"must be no more than {limit} {unit}"


def dns1123_label(value: str) -> list[str]:
    """Errors for a lowercase RFC 1123 label (namespaces, Service names)."""
    if "." in value and not dns1123_subdomain(value):
        return ["must not contain dots"]  # a subdomain but not a label (since 1.27)
    errors = []
    if len(value.encode()) > DNS1123_LABEL_MAX:
        errors.append(_too_long(DNS1123_LABEL_MAX, "bytes"))
    if not re.fullmatch(_LABEL, value):
        errors.append(
            _regex_error(
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                "or '-', and must start and end with an alphanumeric character",
                _LABEL,
                "my-name",
                "123-abc",
            )
        )
    return errors


def dns1123_subdomain(value: str) -> list[str]:
    """Errors for a lowercase RFC 1123 subdomain (ConfigMap, Secret, Deployment names)."""
    errors = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errors.append(_too_long(DNS1123_SUBDOMAIN_MAX))
    if not re.fullmatch(_SUBDOMAIN, value):
        errors.append(
            _regex_error(
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character",
                _SUBDOMAIN,
                "example.com",
            )
        )
    return errors


def dns1035_label(value: str) -> list[str]:
    """Errors for an RFC 1035 label (Service names must also start with a letter)."""
    errors = []
    if len(value) > DNS1123_LABEL_MAX:
        errors.append(_too_long(DNS1123_LABEL_MAX))
    if not re.fullmatch(_DNS1035, value):
        errors.append(
            _regex_error(
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                "start with an alphabetic character, and end with an alphanumeric character",
                _DNS1035,
                "my-name",
                "abc-123",
            )
        )
    return errors


def config_map_key(value: str) -> list[str]:
    """Errors for a ConfigMap or Secret data key."""
    errors = []
    if len(value) > CONFIG_MAP_KEY_MAX:
        errors.append(_too_long(CONFIG_MAP_KEY_MAX))
    if not re.fullmatch(_CONFIG_KEY, value):
        errors.append(
            _regex_error(
                "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                _CONFIG_KEY,
                "key.name",
                "KEY_NAME",
                "key-name",
            )
        )
    if value == ".":
        errors.append("must not be '.'")
    elif value == "..":
        errors.append("must not be '..'")
    elif value.startswith(".."):
        errors.append("must not start with '..'")
    return errors


def qualified_name(value: str) -> list[str]:
    """Errors for a label or annotation key: an optional DNS subdomain prefix, '/', a name
    (IsQualifiedName: every error of the prefix and the name, not just the first)."""
    parts = value.split("/")
    if len(parts) > 2:
        return [
            _regex_error(
                "a qualified name must consist of alphanumeric characters, '-', '_' or '.', "
                "and must start and end with an alphanumeric character",
                _QNAME,
                "MyName",
                "my.name",
                "123-abc",
            )
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    errors: list[str] = []
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            errors += [f"prefix part {e}" for e in dns1123_subdomain(prefix)]
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > DNS1123_LABEL_MAX:
        errors.append(f"name part {_too_long(DNS1123_LABEL_MAX, 'bytes')}")
    if not re.fullmatch(_QNAME, name):
        errors.append(
            "name part "
            + _regex_error(
                "must consist of alphanumeric characters, '-', '_' or '.', "
                "and must start and end with an alphanumeric character",
                _QNAME,
                "MyName",
                "my.name",
                "123-abc",
            )
        )
    return errors


def label_value(value: str) -> list[str]:
    """Errors for a label value (may be empty)."""
    errors = []
    if len(value.encode()) > LABEL_VALUE_MAX:
        errors.append(_too_long(LABEL_VALUE_MAX, "bytes"))
    if not re.fullmatch(_LABEL_VALUE, value):
        errors.append(
            _regex_error(
                "a valid label must be an empty string or consist of alphanumeric characters, "
                "'-', '_' or '.', and must start and end with an alphanumeric character",
                _LABEL_VALUE,
                "MyValue",
                "my_value",
                "12345",
            )
        )
    return errors
