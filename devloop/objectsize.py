"""Whether an object fits where the API server keeps it: etcd refuses a request over
`--max-request-bytes` (1.5 MiB by default, kind's and k0s's too) with "etcdserver: request
is too large", after everything before it in the cycle was applied.

The size is estimated as the object's compact JSON (an upper bound of the protobuf the API
server stores for built-in kinds: same strings, more punctuation) plus the field ownership
server-side apply records in `managedFields` (a `"f:<field>":{}` entry for every field
pdwatch sets, so each ConfigMap key is stored twice). Measured against Kubernetes v1.37.2:
a ConfigMap of 15,000 keys of 60 characters (915 KB of data, under the API server's 1 MiB)
is refused; the 16,000-file workflow's ConfigMap (769 KB JSON) and Deployment (978 KB) are
stored. The estimate puts them at about 2.0, 1.3 and 1.0 MB.
"""

from __future__ import annotations

import json
from typing import Any

ETCD_REQUEST_LIMIT = 1536 * 1024  # etcd's default --max-request-bytes
# What the API server adds (uid, resourceVersion, timestamps, the managedFields entry's
# own fields, status) and etcd's transaction around the value.
MARGIN = 16 * 1024
# Lists whose items server-side apply tracks one by one, by these keys (the OpenAPI's
# x-kubernetes-list-map-keys); other lists are atomic: one entry for the whole list.
LIST_MAP_KEYS = ("name", "containerPort", "port", "mountPath")


def _fieldset(value: Any) -> Any:
    """The fieldsV1 document server-side apply would record for `value`."""
    if isinstance(value, dict):
        return {f"f:{k}": _fieldset(v) for k, v in value.items()}
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        key = next((k for k in LIST_MAP_KEYS if all(k in v for v in value)), None)
        if key is not None:
            return {
                "k:" + json.dumps({key: v[key]}, separators=(",", ":")): _fieldset(v) for v in value
            }
    return {}


def stored_size(manifest: dict[str, Any]) -> int:
    """About how many bytes etcd is asked to store for this object, once applied."""
    compact = (",", ":")
    body = json.dumps(manifest, separators=compact, ensure_ascii=False)
    fields = json.dumps(_fieldset(manifest), separators=compact, ensure_ascii=False)
    return len(body.encode()) + len(fields.encode()) + MARGIN


def too_large(manifest: dict[str, Any], extra: int = 0) -> int | None:
    """The estimated size (with `extra` bytes the object may carry besides) when it is
    over what etcd accepts, else None."""
    size = stored_size(manifest) + extra
    return size if size > ETCD_REQUEST_LIMIT else None
