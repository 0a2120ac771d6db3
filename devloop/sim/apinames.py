"""Name, key and label checks with the API server's own messages.

From k8s.io/apimachinery/pkg/util/validation/validation.go: IsDNS1123Label,
IsDNS1123Subdomain, IsDNS1035Label, IsConfigMapKey, IsQualifiedName, IsValidLabelValue,
with RegexError and MaxLenError as that file words them. The embedded cluster has its own
copy of these rules on purpose: pdwatch checks names too (devloop/names.py), and one
mistake shared by both sides would hide from every test; tests compare the two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
SUBDOMAIN_FMT = LABEL_FMT + "(\\." + LABEL_FMT + ")*"
DNS1035_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE_FMT = "(" + QNAME_FMT + ")?"
CRONJOB_NAME_MAX = 52  # pkg/apis/batch/validation: 63 minus the Jobs' 11-character suffix


def regex_error(message: str, fmt: str, *examples: str) -> str:
    """apimachinery's RegexError."""
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{message} (e.g. {shown}regex used for validation is '{fmt}')"


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


@dataclass(frozen=True)
class Rule:
    fmt: str
    max_len: int
    message: str
    examples: tuple[str, ...]

    def errors(self, value: str) -> list[str]:
        out = []
        if len(value) > self.max_len:
            out.append(max_len_error(self.max_len))
        if not re.fullmatch(self.fmt, value):
            out.append(regex_error(self.message, self.fmt, *self.examples))
        return out


DNS1123_LABEL = Rule(
    LABEL_FMT,
    63,
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character",
    ("my-name", "123-abc"),
)
DNS1123_SUBDOMAIN = Rule(
    SUBDOMAIN_FMT,
    253,
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character",
    ("example.com",),
)
DNS1035_LABEL = Rule(
    DNS1035_FMT,
    63,
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
    "with an alphabetic character, and end with an alphanumeric character",
    ("my-name", "abc-123"),
)
CONFIG_KEY = Rule(
    CONFIG_KEY_FMT,
    253,
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
    ("key.name", "KEY_NAME", "key-name"),
)
LABEL_VALUE = Rule(
    LABEL_VALUE_FMT,
    63,
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character",
    ("MyValue", "my_value", "12345"),
)
QNAME_MESSAGE = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character"
)


def dns1123_label(value: str) -> list[str]:
    return DNS1123_LABEL.errors(value)


def dns1123_subdomain(value: str) -> list[str]:
    return DNS1123_SUBDOMAIN.errors(value)


def dns1035_label(value: str) -> list[str]:
    return DNS1035_LABEL.errors(value)


def label_value(value: str) -> list[str]:
    return LABEL_VALUE.errors(value)


def config_map_key(value: str) -> list[str]:
    """IsConfigMapKey: the rule, then '.', '..' and a '..' prefix refused."""
    out = CONFIG_KEY.errors(value)
    if value == ".":
        out.append("must not be '.'")
    elif value == "..":
        out.append("must not be '..'")
    elif value.startswith(".."):
        out.append("must not start with '..'")
    return out


def qualified_name(value: str) -> list[str]:
    """IsQualifiedName: [prefix/]name, the prefix a DNS-1123 subdomain."""
    parts = value.split("/")
    if len(parts) > 2:
        return [
            "a qualified name "
            + regex_error(QNAME_MESSAGE, QNAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    prefix, name = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])
    out: list[str] = []
    if len(parts) == 2:
        if not prefix:
            out.append("prefix part must be non-empty")
        else:
            out += [f"prefix part {e}" for e in dns1123_subdomain(prefix)]
    if not name:
        out.append("name part must be non-empty")
    elif len(name) > 63:
        out.append(f"name part {max_len_error(63)}")
    if not re.fullmatch(QNAME_FMT, name):
        out.append(
            "name part " + regex_error(QNAME_MESSAGE, QNAME_FMT, "MyName", "my.name", "123-abc")
        )
    return out
