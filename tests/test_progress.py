"""A rollout's progress (devloop.kube.progress): what each thing its watches show means,
as tables of cases, pure, in milliseconds. tests/test_kube_deploy.py and test_explain.py
follow real rollouts through kube/rollout.py, which feeds this."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from devloop import events
from devloop.kube import progress
from devloop.kube.progress import (
    HELD_EVENTS,
    Clock,
    Crashed,
    Done,
    Gone,
    Output,
    Progress,
    Seen,
    Started,
    observe,
    timed_out,
)

T0 = 1000.0  # the monotonic clock when the rollout began
WALL0 = 1_800_000_000.0  # the same moment on the wall clock
TEMPLATE = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c"}]}}


def deployment(generation: int = 2, **changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {"name": "x", "uid": "d-uid", "namespace": "ns", "generation": generation},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": TEMPLATE},
        "status": {"observedGeneration": generation},
    }
    for key, value in changes.items():
        obj[key] = {**obj[key], **value}
    return obj


def rs(hash_: str = "abc", owner: str = "d-uid", template: Any = None) -> dict[str, Any]:
    labels = {"app": "x", "pod-template-hash": hash_}
    shown = template or {**TEMPLATE, "metadata": {"labels": labels}}
    return {
        "metadata": {
            "name": f"x-{hash_}",
            "uid": f"rs-{hash_}",
            "labels": labels,
            "ownerReferences": [{"uid": owner, "controller": True}],
        },
        "spec": {"template": shown},
    }


def pod(
    name: str = "x-abc-1",
    hash_: str = "abc",
    *,
    scheduled: bool = False,
    ready: bool = False,
    running: bool = False,
    waiting: str = "",
    terminated: dict[str, Any] | None = None,
    last_terminated: dict[str, Any] | None = None,
    deleting: bool = False,
    created: str = "",
) -> dict[str, Any]:
    conditions = []
    if scheduled:
        conditions.append({"type": "PodScheduled", "status": "True"})
    if ready:
        conditions.append({"type": "Ready", "status": "True"})
    state: dict[str, Any] = {}
    if running:
        state["running"] = {}
    if waiting:
        state["waiting"] = {"reason": waiting, "message": f"{waiting} message"}
    if terminated:
        state["terminated"] = terminated
    cs: dict[str, Any] = {"name": "engine", "state": state}
    if last_terminated:
        cs["lastState"] = {"terminated": last_terminated}
    meta: dict[str, Any] = {
        "name": name,
        "uid": f"{name}-uid",
        "labels": {"pod-template-hash": hash_},
    }
    if deleting:
        meta["deletionTimestamp"] = "2027-01-01T00:00:00Z"
    if created:
        meta["creationTimestamp"] = created
    return {
        "metadata": meta,
        "spec": {"nodeName": "node-1"},
        "status": {"conditions": conditions, "containerStatuses": [cs]},
    }


def event(uid: str, reason: str, message: str = "m", type_: str = "Warning") -> dict[str, Any]:
    name = uid.removesuffix("-uid")
    return {
        "involvedObject": {"name": name, "uid": uid},
        "reason": reason,
        "message": message,
        "type": type_,
    }


def begin(edited_at: float | None = None) -> Progress:
    return Progress(deployment(), T0, WALL0, edited_at)


def feed(
    seen: list[tuple[str, str, dict[str, Any]]], start: Progress | None = None, step_s: float = 0.1
) -> tuple[Progress, list[Output]]:
    """Everything `seen` in order, 0.1 s apart, until the rollout is over."""
    p = start or begin()
    outputs: list[Output] = []
    for i, (tag, kind, obj) in enumerate(seen):
        now = Clock(T0 + (i + 1) * step_s, WALL0 + (i + 1) * step_s)
        p, out = observe(p, Seen(tag, kind, copy.deepcopy(obj)), now)
        outputs.extend(out)
        if progress.over(out):
            break
    return p, outputs


def shown(outputs: list[Output]) -> list[tuple[str, ...]]:
    """The outputs as short tuples: what a table compares."""
    said: list[tuple[str, ...]] = []
    for o in outputs:
        match o:
            case events.PodProgress():
                said.append(("progress", o.pod, o.step, o.detail))
            case events.PodReady():
                said.append(("ready", o.pod, o.replica_set))
            case events.RolloutFailed():
                said.append(("failed", o.pod, o.reason, o.message))
            case events.Warning():
                said.append(("warning", o.message))
            case Started():
                said.append(("started", o.pod))
            case Crashed():
                said.append(("crashed", o.pod, o.reason, o.message))
            case Done():
                r = o.result
                said.append(("done", str(r.ok), r.pod, r.replica_set, r.superseded_by))
            case Gone():
                said.append(("gone", o.message))
    return said


CREATED = ("progress", "x-abc-1", "created", "")
SCHEDULED = ("progress", "x-abc-1", "scheduled", "node-1")
READY_DONE = [("ready", "x-abc-1", "x-abc"), ("done", "True", "x-abc-1", "x-abc", "")]

CASES: list[tuple[str, list[tuple[str, str, dict[str, Any]]], list[tuple[str, ...]]]] = [
    (
        "the new pod's way to Ready, each step once",
        [
            ("rs", "ADDED", rs()),
            ("pod", "ADDED", pod()),
            ("pod", "MODIFIED", pod(scheduled=True)),
            ("pod", "MODIFIED", pod(scheduled=True)),
            ("event", "ADDED", event("x-abc-1-uid", "Pulled", "image present", "Normal")),
            ("pod", "MODIFIED", pod(scheduled=True, running=True)),
            ("pod", "MODIFIED", pod(scheduled=True, running=True)),
            ("pod", "MODIFIED", pod(scheduled=True, running=True, ready=True)),
        ],
        [
            CREATED,
            SCHEDULED,
            ("progress", "x-abc-1", "pulled", "image present"),
            ("started", "x-abc-1"),
            ("progress", "x-abc-1", "started", ""),
            *READY_DONE,
        ],
    ),
    (
        "a pod seen before its ReplicaSet waits for it, with its event",
        [
            ("pod", "ADDED", pod("x-old-1", "old", ready=True)),
            ("event", "ADDED", event("x-abc-1-uid", "FailedMount", "configmap gone")),
            ("pod", "ADDED", pod(scheduled=True)),
            ("rs", "ADDED", rs()),
            ("pod", "MODIFIED", pod(scheduled=True, ready=True)),
        ],
        [
            CREATED,
            ("progress", "x-abc-1", "waiting", "FailedMount: configmap gone"),
            SCHEDULED,
            *READY_DONE,
        ],
    ),
    (
        "an old ReplicaSet's pod, a deleted pod and another Deployment's ReplicaSet are not it",
        [
            ("rs", "ADDED", rs("old", template={"spec": {"containers": [{"name": "old"}]}})),
            ("rs", "ADDED", rs("zzz", owner="other-uid")),
            ("rs", "ADDED", rs()),
            ("pod", "ADDED", pod("x-old-1", "old", ready=True)),
            ("pod", "DELETED", pod(ready=True)),
            ("pod", "ADDED", pod(ready=True)),
        ],
        [CREATED, *READY_DONE],
    ),
    (
        "the first exit is a crash; a pod being deleted is not",
        [
            ("rs", "ADDED", rs()),
            ("pod", "ADDED", pod(deleting=True, terminated={"exitCode": 0})),
            ("pod", "MODIFIED", pod(terminated={"exitCode": 1, "reason": "Error"})),
        ],
        [CREATED, ("crashed", "x-abc-1", "Error", "the engine exited with code 1")],
    ),
    (
        "the last termination counts (the kubelet restarted it already)",
        [
            ("rs", "ADDED", rs()),
            ("pod", "ADDED", pod(running=True, last_terminated={"reason": "OOMKilled"})),
        ],
        [
            CREATED,
            (
                "crashed",
                "x-abc-1",
                "OOMKilled",
                "the engine exited (killed for using more memory than its limit)",
            ),
        ],
    ),
    (
        "a container stopped for its liveness probe says so, not its exit code",
        [
            ("rs", "ADDED", rs()),
            ("pod", "ADDED", pod(running=True)),
            ("event", "ADDED", event("x-abc-1-uid", "Unhealthy", "Liveness probe failed: 500")),
            ("pod", "MODIFIED", pod(terminated={"exitCode": 137, "message": "killed"})),
        ],
        [
            CREATED,
            ("started", "x-abc-1"),
            ("progress", "x-abc-1", "started", ""),
            ("progress", "x-abc-1", "warning", "Unhealthy: Liveness probe failed: 500"),
            (
                "crashed",
                "x-abc-1",
                "Unhealthy",
                "the kubelet restarted the engine: Liveness probe failed: 500",
            ),
        ],
    ),
    (
        "a readiness failure is a warning; an exit after it is an ordinary crash",
        [
            ("rs", "ADDED", rs()),
            ("pod", "ADDED", pod()),
            ("event", "ADDED", event("x-abc-1-uid", "Unhealthy", "Readiness probe failed")),
            ("pod", "MODIFIED", pod(terminated={"exitCode": 137})),
        ],
        [
            CREATED,
            ("progress", "x-abc-1", "warning", "Unhealthy: Readiness probe failed"),
            ("crashed", "x-abc-1", "Error", "the engine exited with code 137"),
        ],
    ),
    (
        "an image that cannot be pulled fails at once",
        [("rs", "ADDED", rs()), ("pod", "ADDED", pod(waiting="ImagePullBackOff"))],
        [
            CREATED,
            ("failed", "x-abc-1", "ImagePullBackOff", "ImagePullBackOff message"),
            ("done", "False", "x-abc-1", "x-abc", ""),
        ],
    ),
    (
        "a container still being created is not a failure",
        [("rs", "ADDED", rs()), ("pod", "ADDED", pod(waiting="ContainerCreating"))],
        [CREATED],
    ),
    (
        "BackOff and Failed events are not shown (the pod's state says more)",
        [
            ("rs", "ADDED", rs()),
            ("pod", "ADDED", pod()),
            ("event", "ADDED", event("x-abc-1-uid", "BackOff")),
            ("event", "ADDED", event("x-abc-1-uid", "Failed")),
            ("event", "ADDED", event("x-abc-1-uid", "Scheduled", type_="Normal")),
        ],
        [CREATED],
    ),
    (
        "the ReplicaSet's own events count (it cannot create its pod)",
        [("rs", "ADDED", rs()), ("event", "ADDED", event("rs-abc", "FailedCreate", "quota"))],
        [("progress", "rs-abc", "waiting", "FailedCreate: quota")],
    ),
    (
        "a pod that already runs the template (an older ReplicaSet's) serves",
        [
            ("rs", "ADDED", rs()),
            ("pod", "ADDED", pod(ready=True, created="2020-01-01T00:00:00Z")),
        ],
        [("progress", "x-abc-1", "serving", "already running this template"), *READY_DONE],
    ),
    (
        "a pod made just before the watch saw it is new, not serving",
        [
            ("rs", "ADDED", rs()),
            ("pod", "ADDED", pod(ready=True, created="2027-01-15T08:00:00Z")),
        ],
        [CREATED, *READY_DONE],
    ),
    (
        "the Deployment changed by someone else during the rollout: theirs replaces it",
        [
            ("deployment", "MODIFIED", deployment()),  # as it was: the watch's first sight
            ("rs", "ADDED", rs()),
            (
                "deployment",
                "MODIFIED",
                deployment(
                    3,
                    spec={"template": {**TEMPLATE, "spec": {"containers": [{"name": "d"}]}}},
                    metadata={
                        "managedFields": [{"manager": "kubectl-set", "fieldsV1": {"f:spec": {}}}]
                    },
                ),
            ),
        ],
        [
            (
                "warning",
                "deployment x was changed by kubectl-set during the rollout: that change's "
                "rollout replaces this one",
            ),
            ("done", "False", "", "x-abc", "kubectl-set"),
        ],
    ),
    (
        "a newer generation with the same template (a scale) is followed on",
        [
            ("deployment", "MODIFIED", deployment(3, spec={"replicas": 2})),
            ("rs", "ADDED", rs()),
            ("pod", "ADDED", pod(ready=True)),
        ],
        [CREATED, *READY_DONE],
    ),
    (
        "the progress deadline fails the rollout with the controller's words",
        [
            ("rs", "ADDED", rs()),
            (
                "deployment",
                "MODIFIED",
                deployment(
                    status={
                        "conditions": [
                            {
                                "type": "Progressing",
                                "reason": "ProgressDeadlineExceeded",
                                "message": 'ReplicaSet "x-abc" has timed out progressing.',
                            }
                        ]
                    }
                ),
            ),
        ],
        [
            (
                "failed",
                "x-abc",
                "ProgressDeadlineExceeded",
                'ReplicaSet "x-abc" has timed out progressing.',
            ),
            ("done", "False", "", "x-abc", ""),
        ],
    ),
    (
        "a paused Deployment says how to resume it",
        [("deployment", "MODIFIED", deployment(spec={"paused": True}))],
        [
            ("failed", "", "Paused", progress.paused_failure("x", "ns").message),
            ("done", "False", "", "", ""),
        ],
    ),
    (
        "another Deployment's changes and deletion are not this rollout's",
        [
            ("deployment", "MODIFIED", deployment(metadata={"uid": "other", "generation": 9})),
            ("deployment", "DELETED", deployment(metadata={"uid": "other"})),
            ("rs", "ADDED", rs()),
            ("pod", "ADDED", pod(ready=True)),
        ],
        [CREATED, *READY_DONE],
    ),
    (
        "the Deployment deleted during its rollout",
        [("rs", "ADDED", rs()), ("deployment", "DELETED", deployment())],
        [("gone", "deployment x was deleted during its rollout")],
    ),
    (
        "when the ReplicaSet comes, held pods are taken until one ends the rollout",
        [
            ("pod", "ADDED", pod("x-abc-1", ready=True)),
            ("pod", "ADDED", pod("x-abc-2", ready=True)),
            ("rs", "ADDED", rs()),
        ],
        [CREATED, *READY_DONE],
    ),
    (
        "a held pod's last state is the one taken",
        [
            ("pod", "ADDED", pod()),
            ("pod", "MODIFIED", pod(scheduled=True)),
            ("rs", "ADDED", rs()),
        ],
        [CREATED, SCHEDULED],
    ),
    (
        "a pod deleted before its ReplicaSet was seen is not taken when it comes",
        [
            ("pod", "ADDED", pod("x-abc-0")),
            ("pod", "DELETED", pod("x-abc-0", ready=True)),
            ("rs", "ADDED", rs()),
            ("pod", "DELETED", pod("x-abc-2", ready=True)),
            ("pod", "ADDED", pod(ready=True)),
        ],
        [CREATED, *READY_DONE],
    ),
    (
        "a deleted ReplicaSet is not the new one: its pods wait for one",
        [("rs", "DELETED", rs()), ("pod", "ADDED", pod(ready=True))],
        [],
    ),
    (
        "what was said of the ReplicaSet before it was seen is told when it is",
        [
            ("event", "ADDED", event("rs-abc", "FailedCreate", "quota")),
            ("rs", "ADDED", rs()),
        ],
        [("progress", "rs-abc", "waiting", "FailedCreate: quota")],
    ),
    (
        "a step is told once, whatever its detail says the next time",
        [
            ("rs", "ADDED", rs()),
            ("pod", "ADDED", pod()),
            ("event", "ADDED", event("x-abc-1-uid", "Pulled", "first", "Normal")),
            ("event", "ADDED", event("x-abc-1-uid", "Pulled", "again", "Normal")),
        ],
        [CREATED, ("progress", "x-abc-1", "pulled", "first")],
    ),
    (
        "a pod scheduled without a node name says none",
        [("rs", "ADDED", rs()), ("pod", "ADDED", {**pod(scheduled=True), "spec": {}})],
        [CREATED, ("progress", "x-abc-1", "scheduled", "")],
    ),
    (
        "a pod that is being deleted is not Ready, whatever its conditions say",
        [
            ("rs", "ADDED", rs()),
            ("pod", "ADDED", pod(ready=True, deleting=True)),
            ("pod", "ADDED", pod("x-abc-2", ready=True)),
        ],
        [
            CREATED,
            ("progress", "x-abc-2", "created", ""),
            ("ready", "x-abc-2", "x-abc"),
            ("done", "True", "x-abc-2", "x-abc", ""),
        ],
    ),
    (
        "another condition true is not Ready",
        [
            ("rs", "ADDED", rs()),
            (
                "pod",
                "ADDED",
                {
                    **pod(),
                    "status": {
                        "conditions": [
                            {"type": "Ready", "status": "False"},
                            {"type": "Initialized", "status": "True"},
                        ]
                    },
                },
            ),
        ],
        [CREATED],
    ),
    (
        "the Deployment as it was before the change (the watch's first sight) is no change",
        [
            ("deployment", "MODIFIED", deployment(1, spec={"template": {"spec": {}}})),
            ("deployment", "MODIFIED", deployment(2, spec={"template": {"spec": {}}})),
            ("rs", "ADDED", rs()),
            ("pod", "ADDED", pod(ready=True)),
        ],
        [CREATED, *READY_DONE],
    ),
    (
        "who changed it is the last writer of the spec other than pdwatch",
        [
            (
                "deployment",
                "MODIFIED",
                deployment(
                    3,
                    spec={"template": {"spec": {}}},
                    metadata={
                        "managedFields": [
                            {
                                "manager": "kubectl-rollout",
                                "time": "2027-01-01T00:00:01Z",
                                "fieldsV1": {"f:spec": {}},
                            },
                            {
                                "manager": "pdwatch",
                                "time": "2027-01-01T00:00:02Z",
                                "fieldsV1": {"f:spec": {}},
                            },
                        ]
                    },
                ),
            ),
        ],
        [
            (
                "warning",
                "deployment x was changed by kubectl-rollout during the rollout: that change's "
                "rollout replaces this one",
            ),
            ("done", "False", "", "", "kubectl-rollout"),
        ],
    ),
    (
        "a second ReplicaSet that looks new is not taken: the first one is",
        [
            ("rs", "ADDED", rs()),
            ("rs", "ADDED", rs("def")),
            ("pod", "ADDED", pod("x-def-1", "def", ready=True)),
            ("pod", "ADDED", pod(ready=True)),
        ],
        [CREATED, *READY_DONE],
    ),
]


@pytest.mark.parametrize(("seen", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_what_is_seen_means(
    seen: list[tuple[str, str, dict[str, Any]]], expected: list[tuple[str, ...]]
) -> None:
    assert shown(feed(seen)[1]) == expected


@pytest.mark.parametrize(("seen", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_result_says_when_and_carries_the_failure_it_followed(
    seen: list[tuple[str, str, dict[str, Any]]], expected: list[tuple[str, ...]]
) -> None:
    """Each case's outputs, timed: every step and result at its moment since the start
    (feed's clock: the i-th thing seen at i × 0.1 s), a failed result with its failure."""
    p = begin()
    for i, (tag, kind, obj) in enumerate(seen, 1):
        at = Clock(T0 + i * 0.1, WALL0 + i * 0.1)
        p, out = observe(p, Seen(tag, kind, copy.deepcopy(obj)), at)
        for before, o in zip([None, *out], out, strict=False):
            if isinstance(o, events.PodProgress | events.PodReady):
                assert o.ms == pytest.approx(i * 100)
            if isinstance(o, Done):
                assert o.result.ms == pytest.approx(i * 100)
                failed = isinstance(before, events.RolloutFailed)
                assert o.result.failure is (before if failed else None)
        if progress.over(out):
            break


@pytest.mark.parametrize(
    ("conditions", "deleting", "ready"),
    [
        ([{"type": "Ready", "status": "True"}], False, True),
        ([{"type": "Ready", "status": "True"}], True, False),  # on its way out
        (
            [{"type": "Ready", "status": "False"}, {"type": "Initialized", "status": "True"}],
            False,
            False,
        ),
        ([], False, False),
    ],
)
def test_what_ready_is(conditions: list[dict[str, str]], deleting: bool, ready: bool) -> None:
    obj = pod(deleting=deleting)
    obj["status"]["conditions"] = conditions
    assert progress.is_ready(obj) is ready


def test_the_replica_set_takes_its_held_pods_and_lets_them_go() -> None:
    p, _ = feed([("pod", "ADDED", pod()), ("rs", "ADDED", rs())])
    assert p.held_pods == {} and p.last_pod == "x-abc-1"


@pytest.mark.parametrize(
    ("created", "serving"),
    [
        (WALL0 - 1.5, True),  # made more than a second before the rollout: an older RS's
        (WALL0 - 1.0, False),  # within the clocks' second: this rollout's
    ],
)
def test_which_ready_pod_was_there_before(created: float, serving: bool) -> None:
    from datetime import UTC, datetime

    stamp = datetime.fromtimestamp(created, UTC).isoformat()
    _, out = feed([("rs", "ADDED", rs()), ("pod", "ADDED", pod(ready=True, created=stamp))])
    assert shown(out)[0][2] == ("serving" if serving else "created")


@pytest.mark.parametrize(
    ("terminated", "said"),
    [
        ({}, ("Error", "the engine exited")),
        ({"exitCode": 2}, ("Error", "the engine exited with code 2")),
        ({"exitCode": 1, "message": "boom"}, ("Error", "the engine exited with code 1: boom")),
        (
            {"exitCode": 137, "reason": "OOMKilled", "message": "m"},
            (
                "OOMKilled",
                "the engine exited with code 137 (killed for using more memory than its limit): m",
            ),
        ),
    ],
)
def test_what_a_crash_says(terminated: dict[str, Any], said: tuple[str, str]) -> None:
    assert progress.crash_message(terminated) == said


@pytest.mark.parametrize(
    ("detail", "key"),
    [
        ('pods "x-abc-k2j4d" is forbidden', 'pods "x-abc-*" is forbidden'),
        ('pod \\"x-abc-k2j4d\\" failed', 'pod \\"x-abc-*\\" failed'),
        ("no pod names here", "no pod names here"),
    ],
)
def test_a_waiting_message_without_its_generated_names(detail: str, key: str) -> None:
    assert progress.waiting_key(detail) == key


@pytest.mark.parametrize(
    ("template", "other", "same"),
    [
        (
            {"metadata": {"labels": {"app": "x", "pod-template-hash": "a"}}},
            {"metadata": {"labels": {"app": "x", "pod-template-hash": "b"}}},
            True,
        ),
        (
            {"metadata": {"labels": {"app": "x"}, "annotations": {"a": "1"}}},
            {"metadata": {"labels": {"app": "x"}, "annotations": {"a": "2"}}},
            False,
        ),
        ({"metadata": {"labels": {"app": "x"}}}, {"metadata": {"labels": {"app": "y"}}}, False),
        ({"spec": {}}, {"metadata": {}, "spec": {}}, True),
    ],
)
def test_templates_compare_without_their_hash(
    template: dict[str, Any], other: dict[str, Any], same: bool
) -> None:
    assert (progress.without_hash(template) == progress.without_hash(other)) is same


def test_reasons_and_pods_wait_apart() -> None:
    """Within the window, another reason or another pod is shown; a clock that started
    less than the window ago shows the first one too."""
    start = Progress(deployment(), 0.0, WALL0)
    p, _ = feed([("rs", "ADDED", rs())], start)
    said = []
    for at, obj in [
        (1.0, event("rs-abc", "FailedCreate", "quota")),
        (1.5, event("rs-abc", "FailedScheduling", "taint")),
        (2.0, event("rs-abc", "FailedCreate", "webhook")),  # held: same reason, within 10 s
        (11.0, event("rs-abc", "FailedCreate", "webhook")),  # exactly 10 s on: shown
    ]:
        p, out = observe(p, Seen("event", "ADDED", obj), Clock(at, WALL0 + at))
        said.extend(o.detail for o in out if isinstance(o, events.PodProgress))
    assert said == ["FailedCreate: quota", "FailedScheduling: taint", "FailedCreate: webhook"]


def test_times_are_from_the_rollout_start_and_the_save() -> None:
    start = begin(edited_at=WALL0 - 2.0)
    _, out = feed([("rs", "ADDED", rs()), ("pod", "ADDED", pod(ready=True))], start, 0.25)
    created, ready, done = out
    assert isinstance(created, events.PodProgress) and created.ms == pytest.approx(500)
    assert isinstance(ready, events.PodReady)
    assert ready.ms == pytest.approx(500) and ready.edit_to_ready_ms == pytest.approx(2500)
    assert isinstance(done, Done) and done.result.ms == pytest.approx(500)


def test_without_a_save_time_there_is_no_save_to_ready() -> None:
    _, out = feed([("rs", "ADDED", rs()), ("pod", "ADDED", pod(ready=True))])
    ready = out[1]
    assert isinstance(ready, events.PodReady) and ready.edit_to_ready_ms is None


def waiting(message: str) -> tuple[str, str, dict[str, Any]]:
    return ("event", "ADDED", event("rs-abc", "FailedCreate", message))


def test_a_controller_retrying_is_shown_once_in_a_while_and_only_when_new() -> None:
    first = 'pods "x-abc-k2j4d" is forbidden: exceeded quota'
    p, _ = feed([("rs", "ADDED", rs())])
    said = []
    for at, message in [
        (1.0, first),
        (2.0, 'pods "x-abc-p9x7q" is forbidden: a webhook said no'),  # within 10 s: held
        (12.0, 'pods "x-abc-aaaaa" is forbidden: exceeded quota'),  # same words: not again
        (23.0, 'pods "x-abc-bbbbb" is forbidden: a webhook said no'),  # new words: shown
    ]:
        p, out = observe(p, Seen(*waiting(message)), Clock(T0 + at, WALL0 + at))
        said.extend(o.detail for o in out if isinstance(o, events.PodProgress))
        assert p.last_problem == f"FailedCreate: {message}"  # held or not: the latest
    assert said == [
        f"FailedCreate: {first}",
        'FailedCreate: pods "x-abc-bbbbb" is forbidden: a webhook said no',
    ]


def test_events_about_nothing_known_are_held_up_to_a_bound() -> None:
    p, _ = feed([("event", "ADDED", event(f"p{i}-uid", "Pulled")) for i in range(HELD_EVENTS + 5)])
    assert len(p.held_events) == HELD_EVENTS
    assert p.held_events[0]["involvedObject"]["uid"] == "p5-uid"  # the oldest dropped


def test_events_still_about_nothing_known_stay_held_after_the_replica_set() -> None:
    p, out = feed([("event", "ADDED", event("x-abc-1-uid", "Pulled")), ("rs", "ADDED", rs())])
    assert out == [] and len(p.held_events) == 1
    _, out = feed([("pod", "ADDED", pod())], p)
    assert [s[2] for s in shown(out)] == ["created", "pulled"]


def test_observing_changes_nothing_it_was_given() -> None:
    start = begin()
    before = copy.deepcopy(start)
    seen = Seen("pod", "ADDED", pod())
    observe(start, seen, Clock(T0 + 1, WALL0 + 1))
    observe(start, Seen("rs", "ADDED", rs()), Clock(T0 + 1, WALL0 + 1))
    assert start == before


@pytest.mark.parametrize(
    ("last_problem", "message"),
    [
        ("", "the new pod was not Ready after 2.5s"),
        ("FailedMount: no cm", "the new pod was not Ready after 2.5s; last: FailedMount: no cm"),
    ],
)
def test_giving_up_says_what_it_waited_on(last_problem: str, message: str) -> None:
    p = Progress(deployment(), T0, WALL0, last_pod="x-abc-1", last_problem=last_problem)
    assert timed_out(p, 2.5) == events.RolloutFailed("x-abc-1", "Timeout", message)


def test_giving_up_names_the_last_pod_seen() -> None:
    p, _ = feed(
        [
            ("rs", "ADDED", rs()),
            ("pod", "ADDED", pod()),
            ("event", "ADDED", event("x-abc-1-uid", "FailedMount", "no cm")),
        ]
    )
    failure = timed_out(p, 5)
    assert (failure.pod, failure.message) == (
        "x-abc-1",
        "the new pod was not Ready after 5s; last: FailedMount: no cm",
    )
