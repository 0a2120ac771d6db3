"""bench/results.json → BENCHMARKS.md (tables, method, targets). Run by bench/run.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

METHOD = """\
pdwatch runs as its own process (`pdwatch DIR --kubeconfig … --no-tui`, or the TUI in
tmux) against the embedded cluster hosted by the benchmark process, with the cluster's
simulated delays (scheduling, mounts, pulls, engine start) set to zero, so the figures are
pdwatch's own cost. Times are CLOCK_MONOTONIC, shared by both processes: the end of a file
write, the arrival of a request at the API server (the cluster's request log), the arrival
of a line on pdwatch's stdout. Edits are spaced: each waits for the previous one to be
live, plus 0.3 s. CPU is psutil's user+system time of the pdwatch process; peak RSS is
its VmHWM. A real cluster adds its own scheduling, image and start-up time to (c) and (d),
not to (a) and (b)."""

TARGETS = [
    (
        "edit → restart p50 ≤ debounce + 30 ms (150 ms debounce)",
        "latency_default_debounce",
        "b_restart_reached_ms",
        "p50",
        180.0,
    ),
    (
        "edit → restart p50 ≤ debounce + 30 ms (20 ms debounce)",
        "latency_debounce_20ms",
        "b_restart_reached_ms",
        "p50",
        50.0,
    ),
]


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _stats_table(section: dict[str, Any], label: str = "measure", unit: str = " ms") -> list[str]:
    lines = [_row([label, "n", f"p50{unit}", f"p95{unit}", f"max{unit}"]), _row(["---"] * 5)]
    for key, value in section.items():
        if isinstance(value, dict) and "p50" in value:
            lines.append(_row([key, value["n"], value["p50"], value["p95"], value["max"]]))
    return lines


def render_markdown(doc: dict[str, Any]) -> str:
    r = doc.get("results", {})
    m = doc.get("machine", {})
    out = [
        "# Benchmarks",
        "",
        f"Measured {doc.get('date', '?')} at commit `{doc.get('commit', '?')[:12]}` on "
        f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores, Python {m.get('python', '?')}.",
        "",
        "Reproduce: `python3 dev.py bench` (or `make bench`); about 15 minutes on 2 cores; "
        "`--only SECTION …` reruns sections, `--edits`, `--idle-seconds`, `--log-lines` "
        "change the sizes. Every figure below is in `bench/results.json`.",
        "",
        "## Method",
        "",
        METHOD,
        "",
    ]
    for key, title in (
        ("latency_default_debounce", "Edit to live, default 150 ms debounce"),
        ("latency_debounce_20ms", "Edit to live, --debounce-ms 20"),
    ):
        if key in r:
            out += [
                f"## {title}",
                "",
                "(a) the ConfigMap apply reaches the API server, (b) the restart reaches "
                "it, (c) pdwatch prints the new pod Ready, (d) pdwatch prints the first "
                "line the saved code prints, run by the engine (a real Deno process) in "
                "the new pod; each from the end of the file write.",
                "",
                *_stats_table(r[key]),
                "",
            ]
    if "baseline_watchfiles_kubectl" in r:
        out += [
            "## Baseline: watchfiles CLI + kubectl",
            "",
            "`watchfiles --target-type command \"sh -c 'kubectl create configmap … "
            "--dry-run=client -o yaml | kubectl apply --server-side -f - && kubectl "
            "rollout restart …'\" nodes/` with watchfiles' defaults, against the same "
            "cluster in the same run.",
            "",
            *_stats_table(r["baseline_watchfiles_kubectl"]),
            "",
        ]
        lost = r["baseline_watchfiles_kubectl"].get("edits_without_restart")
        if lost:
            out += [
                f"Edits whose restart never reached the server: {lost} of "
                f"{r['baseline_watchfiles_kubectl'].get('edits')} (kubectl stamps "
                "restartedAt to the second; a second restart within the same second is an "
                "empty patch and kubectl skips it, so that edit never goes live).",
                "",
            ]
        ratio = r.get("baseline_over_pdwatch_p50", {})
        if ratio:
            out += [
                "Baseline p50 / pdwatch p50 (150 ms debounce): "
                + ", ".join(f"{k.split('_')[0]} {v}×" for k, v in ratio.items()),
                "",
            ]
        fast = r.get("latency_debounce_20ms", {}).get("b_restart_reached_ms", {}).get("p50")
        base = r["baseline_watchfiles_kubectl"].get("b_restart_reached_ms", {}).get("p50")
        out += [
            "Why the 10× target is not met: watchfiles' CLI runs its command 50 ms after "
            "the last change (its `step`; its `debounce` of 1.6 s is only a maximum wait), "
            "and two kubectl calls cost about 60 ms each here, so the baseline reaches the "
            "server in about the time pdwatch's default 150 ms debounce takes alone. At a "
            "comparable debounce (--debounce-ms 20) pdwatch reaches it in "
            f"{fast} ms against the baseline's {base} ms"
            + (f" ({base / fast:.1f}×)" if fast and base else "")
            + ". The baseline also loses edits (above) and does none of the checks or the "
            "rollout following that pdwatch does.",
            "",
            "Why it cannot be met as stated: pdwatch waits its debounce after the last save "
            "before it reads anything (the other target asks for restart ≤ debounce + 30 ms), "
            "so 10× the baseline would need the baseline's (b) to be ten times the debounce: "
            "1.5 s at 150 ms. Against this local, plain-HTTP cluster each kubectl call is "
            "about 60 ms. Against a remote cluster every kubectl run also pays TLS, "
            "authentication and discovery (the reference CLI's authors measured 5–10 s a "
            "deploy), which pdwatch pays once per session; that was not measured here.",
            "",
        ]
    if "burst" in r:
        b = r["burst"]
        out += [
            "## Burst",
            "",
            _row(["writes", "over ms", "deploy cycles", "last write → final content Ready (ms)"]),
            _row(["---"] * 4),
            _row([b["writes"], b["burst_ms"], b["cycles"], b["final_live_after_last_write_ms"]]),
            "",
        ]
    if "idle" in r:
        out += [
            "## Idle (nothing changes)",
            "",
            _row(["front end", "seconds", "CPU s", "% of one core", "peak RSS MB"]),
            _row(["---"] * 5),
        ]
        for name, v in r["idle"].items():
            if "cpu_seconds" in v:
                out.append(
                    _row(
                        [
                            name,
                            v["seconds"],
                            v["cpu_seconds"],
                            v["cpu_percent_of_one_core"],
                            v["peak_rss_mb"],
                        ]
                    )
                )
            else:
                out.append(_row([name, "—", "—", "—", v.get("skipped", "")]))
        out.append("")
    if "startup" in r:
        out += ["## Start-up and shutdown", "", *_stats_table(r["startup"]), ""]
    if "scale" in r:
        out += [
            "## Scale",
            "",
            _row(["measure", "code bytes", "p50 ms", "p95 ms", "max ms"]),
            _row(["---"] * 5),
        ]
        for name, v in r["scale"].items():
            out.append(_row([name, v.get("code_bytes", ""), v["p50"], v["p95"], v["max"]]))
        out.append("")
    if "logs_plain" in r or "logs_tui" in r:
        out += [
            "## Log throughput",
            "",
            _row(["front end", "lines", "lines/s", "longest UI stall ms"]),
            _row(["---"] * 4),
        ]
        if "logs_plain" in r:
            p = r["logs_plain"]
            out.append(_row(["plain (stdout pipe)", p["lines"], p["lines_per_second"], "—"]))
        if "logs_tui" in r:
            t = r["logs_tui"]
            for n, run in enumerate(t.get("runs") or [t], 1):
                label = (
                    f"TUI (headless Textual), run {n}" if "runs" in t else "TUI (headless Textual)"
                )
                out.append(
                    _row([label, run["lines"], run["lines_per_second"], run["longest_ui_stall_ms"]])
                )
        out.append("")
        if "logs_tui" in r and "runs" in r["logs_tui"]:
            out += [
                "Each TUI run is a fresh cluster process and a fresh TUI; the targets below take"
                " the slowest rate and the longest stall of all runs.",
                "",
            ]
    out += _long_session_sections(r)
    out += _sim_sections(r)
    out += ["## Targets", "", _row(["target", "measured", "met"]), _row(["---"] * 3)]
    for label, section, key, stat, limit in TARGETS:
        value = r.get(section, {}).get(key, {}).get(stat)
        met = "—" if value is None else ("yes" if value <= limit else "no")
        out.append(_row([label, value if value is not None else "not run", met]))
    extra = _more_targets(r)
    out += [*extra, ""]
    return "\n".join(out)


def _more_targets(r: dict[str, Any]) -> list[str]:
    rows = []
    ratio = r.get("baseline_over_pdwatch_p50", {})
    for key in ("a_configmap_applied_ms", "b_restart_reached_ms"):
        if key in ratio:
            rows.append(
                _row(
                    [
                        f"≥ 10× faster than the baseline on ({key[0]})",
                        f"{ratio[key]}×",
                        "yes" if ratio[key] >= 10 else "no",
                    ]
                )
            )
    if "burst" in r:
        b = r["burst"]
        rows.append(
            _row(
                [
                    "burst: one cycle, final content live",
                    f"{b['cycles']} cycle(s)",
                    "yes" if b["cycles"] == 1 else "no",
                ]
            )
        )
    idle = r.get("idle", {})
    if "cpu_percent_of_one_core" in idle.get("headless", {}):
        v = idle["headless"]["cpu_percent_of_one_core"]
        rows.append(_row(["idle ≤ 1 % of a core, headless", f"{v} %", "yes" if v <= 1 else "no"]))
    if "cpu_percent_of_one_core" in idle.get("tui_in_tmux", {}):
        t = idle["tui_in_tmux"]
        rows.append(
            _row(
                [
                    "idle ≤ 2 % of a core with the TUI",
                    f"{t['cpu_percent_of_one_core']} %",
                    "yes" if t["cpu_percent_of_one_core"] <= 2 else "no",
                ]
            )
        )
        rows.append(
            _row(
                [
                    "peak RSS ≤ 120 MB with the TUI",
                    f"{t['peak_rss_mb']} MB",
                    "yes" if t["peak_rss_mb"] <= 120 else "no",
                ]
            )
        )
    help_p50 = r.get("startup", {}).get("help_ms", {}).get("p50")
    if help_p50 is not None:
        rows.append(
            _row(["pdwatch --help ≤ 300 ms", f"{help_p50} ms", "yes" if help_p50 <= 300 else "no"])
        )
    scale = r.get("scale", {}).get("render_and_hash_500_files", {})
    if "p50" in scale:
        rows.append(
            _row(
                [
                    "render + hash of 500 files / ~850 KB ≤ 50 ms",
                    f"{scale['p50']} ms",
                    "yes" if scale["p50"] <= 50 else "no",
                ]
            )
        )
    if "logs_plain" in r:
        v = r["logs_plain"]["lines_per_second"]
        rows.append(_row(["≥ 5,000 log lines/s plain", v, "yes" if v >= 5000 else "no"]))
    if "logs_tui" in r:
        t = r["logs_tui"]
        rows.append(
            _row(
                [
                    "≥ 2,000 log lines/s in the TUI, no stall > 100 ms",
                    f"{t['lines_per_second']}/s, stall {t['longest_ui_stall_ms']} ms",
                    "yes"
                    if t["lines_per_second"] >= 2000 and (t["longest_ui_stall_ms"] or 0) <= 100
                    else "no",
                ]
            )
        )
    rows += _session_targets(r)
    return rows


def _long_session_sections(r: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if "events_20k" in r:
        e = r["events_20k"]
        out += [
            "## Save to Ready in a busy namespace",
            "",
            "(c) with --debounce-ms 20, in a namespace of its own, then in one where the "
            "cluster holds 20,000 Events about objects pdwatch does not follow.",
            "",
            *_stats_table(
                {
                    "empty namespace": e["empty_namespace_ready_ms"],
                    "20,000 unrelated events": e["with_20000_events_ready_ms"],
                }
            ),
            "",
            f"p50 ratio: {e['ratio_p50']}.",
            "",
        ]
    if "long_session" in r:
        s = r["long_session"]
        n = s["cycles"]
        out += [
            "## A long session",
            "",
            f"One headless pdwatch (--debounce-ms 20) through {n} deploy cycles, each a save "
            "waited for until pdwatch prints the new pod Ready. RSS is the pdwatch process's.",
            "",
            _row(["RSS after 100 cycles MB", f"RSS after {n} MB", "growth MB"]),
            _row(["---"] * 3),
            _row([s["rss_mb_after_100"], s.get(f"rss_mb_after_{n}"), s["rss_growth_mb"]]),
            "",
            *_stats_table(
                {
                    "save → Ready, first 100 cycles": s["first_100_save_to_ready_ms"],
                    "save → Ready, last 100 cycles": s["last_100_save_to_ready_ms"],
                }
            ),
            "",
        ]
    if "quit" in r:
        q = r["quit"]
        out += [
            "## Quit",
            "",
            "SIGINT to process exit, headless, in four states.",
            "",
            _row(["state", "ms"]),
            _row(["---"] * 2),
            *(_row([k.removesuffix("_ms").replace("_", " "), v]) for k, v in q.items()),
            "",
        ]
    if "per_save" in r:
        p = r["per_save"]
        out += [
            "## What one save costs",
            "",
            "A save of examples/hello, pdwatch in process against an embedded cluster of its "
            "own (as the daemon runs it, with its executor), from the save to "
            "its deploy recorded in the history: the cluster's request log (watches count), "
            "Thread.start on pdwatch's thread, the events emitted.",
            "",
            *_stats_table(
                {
                    "API requests": p["requests"],
                    "threads started": p["threads"],
                    "events": p["events"],
                },
                "per save",
                "",
            ),
            "",
        ]
    if "five_workflows" in r:
        f = r["five_workflows"]
        idle = f["five_idle"]
        out += [
            "## Five workflows in one session",
            "",
            "Save → Ready (--debounce-ms 20, headless) of a workflow watched alone, then of the "
            "first of five watched in one session (`pdwatch PARENT`); then the five's idle "
            f"CPU over {idle['seconds']:g} s and peak RSS.",
            "",
            *_stats_table(
                {
                    "one workflow": f["one_save_to_ready_ms"],
                    "the first of five": f["five_save_to_ready_ms"],
                },
                "save → Ready",
            ),
            "",
            f"Five over one (p50): {f['five_over_one_p50']}×. Idle with five: "
            f"{idle['cpu_percent_of_one_core']} % of a core, peak RSS {idle['peak_rss_mb']} MB.",
            "",
        ]
    out += _url_sections(r)
    return out


URL_CLUSTERS = {
    "url": "the embedded cluster",
    "url_control_plane": "Kubernetes' own control plane (`python -m devloop.controlplane`)",
}


def _url_sections(r: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key, where in URL_CLUSTERS.items():
        if key not in r:
            continue
        u = r[key]
        load = u["under_load"]
        out += [
            f"## The local URL, on {where}",
            "",
            "GET /health 300 times through the URL and 300 times straight to the pod's "
            "address (one kept-alive connection each, alternating); then "
            f"{load['rollouts']} saves rolled out one after another while POST /run is sent "
            "at 20 requests/s through the URL; per rollout, from this process's own watch "
            "seeing the new pod Ready to the first request (sent back to back from then) "
            "that the new pod answers.",
            "",
            *_stats_table(
                {
                    "GET /health, straight to the pod": u["health_direct_ms"],
                    "GET /health, through the URL": u["health_through_url_ms"],
                    "new pod Ready → the URL serves it": u["ready_to_url_serving_ms"],
                }
            ),
            "",
            f"Added by the URL (p50): {u['added_p50_ms']} ms. Under load: "
            f"{load['requests']} requests, {load['failed']} failed, "
            f"{load['answered_by_an_older_save_after_a_newer']} answered by an older save "
            "after a newer one had answered.",
            "",
        ]
    return out


def _sim_sections(r: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if "sim_cron" in r:
        c = r["sim_cron"]
        out += [
            "## Embedded cluster: API latency while CronJobs fire",
            "",
            f"GETs of one ConfigMap in a loop, 2 s idle, then 4 s across the minute at which "
            f"{c['cronjobs']} CronJobs (`* * * * *`) fire ({c['jobs_started']} Jobs created). "
            "The client runs in the cluster's process (same GIL).",
            "",
            *_stats_table(
                {
                    "idle": c["idle_get_ms"],
                    "during the minute": c["during_the_minute_get_ms"],
                }
            ),
            "",
            f"p99: idle {c['p99_idle_ms']} ms, during the minute {c['p99_during_the_minute_ms']} "
            "ms.",
            "",
        ]
    if "sim_memory" in r:
        m = r["sim_memory"]
        out += [
            "## Embedded cluster: memory",
            "",
            f"`python -m devloop.sim` as its own process: RSS at start, after {m['applies']} "
            "server-side applies of a different 900 KB ConfigMap, after deleting it.",
            "",
            _row(["at start MB", "after the applies MB", "after the delete MB"]),
            _row(["---"] * 3),
            _row([m["rss_mb_at_start"], m["rss_mb_after_applies"], m["rss_mb_after_delete"]]),
            "",
        ]
    if "engine" in r:
        e = r["engine"]
        two = e["two_pods_session"]
        out += [
            "## The engine as a process",
            "",
            "The stand-in engine (`engine-image/main.ts`) under the `deno` wheel's Deno, on "
            "the hello example: from spawn until `/health` answers (cold start, Deno's "
            "module cache warm), and its RSS after one `/run`.",
            "",
            *_stats_table({"cold start ms": e["cold_start_ms"], "RSS MB": e["engine_rss_mb"]}),
            "",
            "A session: `python -m devloop.sim` as its own process with two workflows "
            "deployed (hello and uptime-prober: two engine pods), each watched by a "
            "headless pdwatch.",
            "",
            _row(["embedded cluster MB", "engine pods", "their engines MB", "each pdwatch MB"]),
            _row(["---"] * 4),
            _row(
                [
                    two["embedded_cluster_mb"],
                    two["engine_pods"],
                    two["engines_mb"],
                    ", ".join(str(v) for v in two["pdwatch_each_mb"]),
                ]
            ),
            "",
        ]
    if "sim_large_list" in r:
        big = r["sim_large_list"]
        out += [
            "## Embedded cluster: other requests during a large list",
            "",
            f"`GET /version` in a loop while another client lists {big['list_mb']} MB of "
            "ConfigMaps three times (`python -m devloop.sim` as its own process). Lists "
            "over 500 objects are sent a chunk at a time.",
            "",
            *_stats_table(
                {
                    "the list ms": big["list_ms"],
                    "/version meanwhile ms": big["version_during_list_ms"],
                }
            ),
            "",
        ]
    if "large_file_saves" in r:
        m = r["large_file_saves"]
        n = m["saves"]
        out += [
            "## Saves of a large node file: memory",
            "",
            f"A process renders (reads, hashes, syntax-checks) a workflow after each of {n:,} "
            f"saves of a {m['file_kb']} KB node file, each with other content: its RSS, and "
            "with the syntax check's worker process.",
            "",
            _row(["after", "pdwatch MB", "with the worker MB"]),
            _row(["---"] * 3),
            *(
                _row([f"{k:,} saves", m[f"rss_mb_after_{k}"], m[f"rss_mb_with_worker_after_{k}"]])
                for k in (1, 100, n)
                if f"rss_mb_after_{k}" in m
            ),
            "",
        ]
    return out


def _session_targets(r: dict[str, Any]) -> list[str]:
    rows = []
    ratio = r.get("events_20k", {}).get("ratio_p50")
    if ratio is not None:
        rows.append(
            _row(
                [
                    "save → Ready with 20,000 unrelated events within 10 % of empty (p50)",
                    f"{ratio}×",
                    "yes" if ratio <= 1.10 else "no",
                ]
            )
        )
    growth = r.get("long_session", {}).get("rss_growth_mb")
    if growth is not None:
        n = r["long_session"]["cycles"]
        rows.append(
            _row(
                [
                    f"RSS after {n} cycles within 10 MB of RSS after 100",
                    f"{growth:+} MB",
                    "yes" if n >= 1000 and abs(growth) <= 10 else "no",
                ]
            )
        )
    quit_ms = r.get("quit", {})
    if quit_ms:
        slowest = max(quit_ms.values())
        rows.append(
            _row(
                [
                    "quit ≤ 1 s in every state measured",
                    f"{slowest} ms (slowest)",
                    _yes(slowest <= 1000),
                ]
            )
        )
    five = r.get("five_workflows")
    if five:
        ratio, idle = five["five_over_one_p50"], five["five_idle"]
        rows.append(
            _row(
                [
                    "five workflows: save → Ready ≤ 10 % more than one (p50)",
                    f"{ratio}×",
                    _yes(ratio is not None and ratio <= 1.10),
                ]
            )
        )
        cpu, rss = idle["cpu_percent_of_one_core"], idle["peak_rss_mb"]
        rows.append(
            _row(
                [
                    "five workflows idle: ≤ 1.5 % of a core and ≤ 130 MB",
                    f"{cpu} %, {rss} MB",
                    _yes(cpu <= 1.5 and rss <= 130),
                ]
            )
        )
    per_save = r.get("per_save")
    if per_save:
        requests, threads = per_save["requests"]["p50"], per_save["threads"]["p50"]
        rows.append(
            _row(
                [
                    "per save: ≤ 8 API requests and no thread started (p50)",
                    f"{requests} requests, {threads} threads",
                    _yes(requests <= 8 and threads == 0),
                ]
            )
        )
    for key in URL_CLUSTERS:
        if key in r:
            u = r[key]
            where = "embedded" if key == "url" else "control plane"
            failed = u["under_load"]["failed"]
            rows.append(
                _row(
                    [
                        f"URL ({where}): no request fails through "
                        f"{u['under_load']['rollouts']} rollouts at 20/s",
                        f"{failed} failed",
                        _yes(failed == 0 and u["under_load"]["rollouts"] >= 50),
                    ]
                )
            )
            added = u["added_p50_ms"]
            rows.append(
                _row([f"URL ({where}): ≤ 5 ms added (p50)", f"{added} ms", _yes(added <= 5)])
            )
            switch = u["ready_to_url_serving_ms"]["p50"]
            rows.append(
                _row(
                    [
                        f"URL ({where}): new pod Ready → served ≤ 50 ms (p50)",
                        f"{switch} ms (max {u['ready_to_url_serving_ms']['max']})",
                        _yes(switch <= 50),
                    ]
                )
            )
    memory = r.get("sim_memory", {})
    if memory:
        kept = round(memory["rss_mb_after_delete"] - memory["rss_mb_at_start"], 1)
        rows.append(
            _row(
                [
                    "embedded cluster: a deleted large object's memory is freed (≤ 10 MB kept)",
                    f"{kept:+} MB",
                    _yes(kept <= 10),
                ]
            )
        )
    return rows


def _yes(met: bool) -> str:
    return "yes" if met else "no"


def main() -> None:
    doc = json.loads((ROOT / "bench" / "results.json").read_text())
    (ROOT / "BENCHMARKS.md").write_text(render_markdown(doc))
    print(f"wrote {ROOT / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    main()
