"""Issue 13's goals, each checked against the benchmarks that measure it, over several runs.

    python bench/goals.py [--runs 3] [--canaille /tmp/canaille-venv] [--engines sqlite postgres]
                          [--seconds 3] [--flow-seconds 15] [--waiting-seconds 20]

Each run calls bench_screens.py, bench_api.py (both `--reuse-port`, so that every `/healthz` phase
is spread over both workers: bench/README round 11), bench_waiting.py and bench_flow.py (wrk, 16
customers, once per engine), one after the other, each with `--json`, then prints one line a goal:
the figure of each run and in how many runs the goal was met. On this kind of box the same code's
figures move by 10-20 % between runs (bench/README rounds 11-13): a goal met in one run and missed
in the next is not met. The box's pace (harness.pace_ms) is printed per run beside them.

Exit status: 0 when every goal was met in every run, 1 when one was not, 2 when a benchmark failed.
A benchmark, not a test: nothing here runs in CI.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import subprocess
import sys
import tempfile

BENCH = pathlib.Path(__file__).resolve().parent

# The targets.
SCREEN_RATIO = 0.35  # every screen GET, req/s against /healthz in the same run
POLL_RATIO = 0.65
SCREEN_P99_MS = 60.0  # every screen GET at 16 connections
FLOWS_PER_S = 40.0  # complete flows, 0 errors, on each engine
FLOW_STEP_P99_MS = 150.0
WAITING_P99_MS = 50.0  # 1,000 customers polling ④ every 2 s (strictly under)
API_RATIOS = {"accounts": 0.5, "balances": 0.5, "transactions": 0.15}
API_P99_MS = 60.0
WORKER_RSS_MB = 80  # after the flow benchmark, on each engine

SCREENS = {"account": "①", "account_htmx": "① htmx", "customer": "②", "phone": "③", "call": "④", "pin": "⑤",
           "consent": "⑥"}


@dataclasses.dataclass
class Verdict:
    goal: str
    target: str
    figures: list[str]  # one a run
    met: list[bool]  # one a run

    @property
    def summary(self) -> str:
        return f"{sum(self.met)} of {len(self.met)}"


def _rows(figures: dict | None) -> dict[str, dict]:
    return {row["key"]: row for row in (figures or {}).get("rows", [])}


def _flow_run(figures: dict | None, engine: str) -> dict | None:
    return next((run for run in (figures or {}).get("runs", []) if run["engine"] == engine), None)


def judge(run: dict) -> list[tuple[str, str, str, bool]]:
    """One run's (goal, target, figure, met) for every goal; `run` holds each benchmark's --json
    figures under "screens", "api", "waiting" and "flow" (None where it did not run). A goal whose
    figures are missing is not met."""
    out = []
    screens, api = _rows(run.get("screens")), _rows(run.get("api"))
    canaille = screens.get("canaille")
    for key, mark in SCREENS.items():
        row = screens.get(key)
        if row is None:
            out.append((f"{mark} GET / `/healthz`", f"≥ {SCREEN_RATIO}", "not measured", False))
            out.append((f"{mark} GET p99", f"≤ {SCREEN_P99_MS:.0f} ms", "not measured", False))
            out.append((f"{mark} GET against Canaille's login page", "more req/s", "not measured", False))
            continue
        out.append((f"{mark} GET / `/healthz`", f"≥ {SCREEN_RATIO}", f"{row['ratio']:.2f}",
                    row["ratio"] >= SCREEN_RATIO and not row["errors"]))
        out.append((f"{mark} GET p99", f"≤ {SCREEN_P99_MS:.0f} ms", f"{row['p99']:.0f} ms",
                    row["p99"] <= SCREEN_P99_MS and not row["errors"]))
        if canaille is None:
            out.append((f"{mark} GET against Canaille's login page", "more req/s", "Canaille not measured", False))
        else:
            out.append((f"{mark} GET against Canaille's login page", "more req/s",
                        f"{row['rps']:,.0f} vs {canaille['rps']:,.0f}", row["rps"] > canaille["rps"]))
    poll = screens.get("poll")
    out.append(("④ poll / `/healthz`", f"≥ {POLL_RATIO}", f"{poll['ratio']:.2f}" if poll else "not measured",
                bool(poll) and poll["ratio"] >= POLL_RATIO and not poll["errors"]))
    for key, target in API_RATIOS.items():
        row = api.get(key)
        name = {"accounts": "`/accounts`", "balances": "`/accounts/balances`",
                "transactions": "transactions, 500 rows"}[key]
        out.append((f"{name} / `/healthz`, p99", f"≥ {target}, ≤ {API_P99_MS:.0f} ms",
                    f"{row['ratio']:.2f}, {row['p99']:.0f} ms" if row else "not measured",
                    bool(row) and row["ratio"] >= target and row["p99"] <= API_P99_MS and not row["errors"]))
    waiting = run.get("waiting")
    out.append(("1,000 waiting on ④: p99", f"< {WAITING_P99_MS:.0f} ms",
                f"{waiting['p99_ms']:.1f} ms, {waiting['cores']:.2f} cores" if waiting else "not measured",
                bool(waiting) and waiting["p99_ms"] < WAITING_P99_MS and not waiting["errors"]))
    for engine, name in (("sqlite", "SQLite"), ("postgres", "PostgreSQL + Redis")):
        flow = _flow_run(run.get("flow"), engine)
        if flow is None:
            if run.get("flow") is not None:  # that engine was left out on purpose (--engines)
                continue
            out.append((f"flows, {name}", "", "not measured", False))
            continue
        worst = max((s["p99_ms"] for s in flow["steps"].values()), default=float("inf"))
        out.append((f"flows, {name}", f"≥ {FLOWS_PER_S:.0f}/s, 0 errors, every step's p99 ≤ {FLOW_STEP_P99_MS:.0f} ms",
                    f"{flow['flows_per_s']:.1f}/s, {flow['errors']} errors, worst p99 {worst:.0f} ms",
                    flow["flows_per_s"] >= FLOWS_PER_S and flow["errors"] == 0 and worst <= FLOW_STEP_P99_MS))
        rss = flow["rss_mb_after"]
        out.append((f"worker RSS after the flows, {name}", f"≤ {WORKER_RSS_MB} MB",
                    " / ".join(f"{x} MB" for x in rss) or "not measured", bool(rss) and max(rss) <= WORKER_RSS_MB))
    return out


def verdicts(runs: list[dict]) -> list[Verdict]:
    """Every goal over the runs: its figure in each and in which it was met."""
    found: dict[str, Verdict] = {}
    for run in runs:
        for goal, target, figure, met in judge(run):
            verdict = found.setdefault(goal, Verdict(goal, target, [], []))
            verdict.figures.append(figure)
            verdict.met.append(met)
    return list(found.values())


def _bench(script: str, out: pathlib.Path, *extra: str) -> dict | None:
    """Run bench/`script` with --json `out`; its figures, or None when it failed (its output shown)."""
    command = [sys.executable, str(BENCH / script), "--json", str(out), *extra]
    print(f"$ {' '.join(command[1:])}", file=sys.stderr, flush=True)
    done = subprocess.run(command, capture_output=True, text=True)
    if not out.exists():
        print(done.stdout[-2000:], done.stderr[-2000:], sep="\n", file=sys.stderr)
        return None
    return json.loads(out.read_text(encoding="utf-8"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--canaille", metavar="VENV", default=None, help="Canaille's venv (bench_screens.py)")
    parser.add_argument("--engines", nargs="+", default=["sqlite", "postgres"], choices=("sqlite", "postgres"))
    parser.add_argument("--seconds", type=float, default=3.0, help="each wrk phase of bench_screens and bench_api")
    parser.add_argument("--flow-seconds", type=float, default=15.0)
    parser.add_argument("--waiting-seconds", type=float, default=20.0)
    args = parser.parse_args()

    runs, failed = [], False
    with tempfile.TemporaryDirectory(prefix="renkei-goals-") as tmp:
        for i in range(args.runs):
            folder = pathlib.Path(tmp) / str(i)
            folder.mkdir()
            screens_extra = ("--canaille", args.canaille) if args.canaille else ()
            run = {
                "screens": _bench("bench_screens.py", folder / "screens.json", "--reuse-port", "--seconds",
                                  f"{args.seconds:g}", "--rounds", "2", *screens_extra),
                "api": _bench("bench_api.py", folder / "api.json", "--reuse-port", "--seconds", f"{args.seconds:g}",
                              "--rounds", "2"),
                "waiting": _bench("bench_waiting.py", folder / "waiting.json", "--seconds",
                                  f"{args.waiting_seconds:g}"),
                "flow": _bench("bench_flow.py", folder / "flow.json", "--generator", "wrk", "--customers", "16",
                               "--seconds", f"{args.flow_seconds:g}", "--engines", *args.engines),
            }
            failed = failed or any(figures is None for figures in run.values())
            runs.append(run)
    print(f"# issue 13's goals, {args.runs} run(s): bench_screens and bench_api --reuse-port, {args.seconds:g} s "
          f"phases, 2 rounds; bench_waiting {args.waiting_seconds:g} s; bench_flow wrk, 16 customers, "
          f"{args.flow_seconds:g} s, {' and '.join(args.engines)}")
    print("| goal | target | " + " | ".join(f"run {i + 1}" for i in range(len(runs))) + " | met |")
    print("|---|---|" + "---|" * len(runs) + "---|")
    found = verdicts(runs)
    for v in found:
        print(f"| {v.goal} | {v.target} | " + " | ".join(v.figures) + f" | {v.summary} |")
    paces = [", ".join(f"{pace:.1f}" for name in ("screens", "flow") for pace in (run[name] or {}).get("pace_ms", []))
             for run in runs]
    print("this box's pace (harness.pace_ms: ms, before and after bench_screens, then bench_flow), by run: "
          + "; ".join(pace or "-" for pace in paces))
    if failed:
        return 2
    return 0 if all(all(v.met) for v in found) else 1


if __name__ == "__main__":
    sys.exit(main())
