"""bench/goals.py: issue 13's goals judged from the benchmarks' --json figures. Each goal is met at
its target and missed just past it, a goal without figures is not met, and the figures the
benchmarks write (bench_screens' and bench_api's rows, bench_flow's runs) carry what goals.py reads."""
import argparse
import copy
import pathlib
import sys

import pytest

BENCH = pathlib.Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import bench_flow  # noqa: E402
import bench_screens  # noqa: E402
import goals  # noqa: E402


def _row(key: str, ratio: float, rps: float = 2000.0, p99: float = 40.0, errors: int = 0) -> dict:
    return {"key": key, "ratio": ratio, "rps": rps, "p99": p99, "errors": errors}


def _flow(engine: str, per_second: float = 41.0, errors: int = 0, worst_p99: float = 120.0,
          rss: tuple = (75, 76)) -> dict:
    return {"engine": engine, "flows_per_s": per_second, "errors": errors, "rss_mb_after": list(rss),
            "steps": {"① GET": {"n": 600, "p50_ms": 5.0, "p99_ms": 20.0},
                      "② POST": {"n": 600, "p50_ms": 104.0, "p99_ms": worst_p99}}}


def passing_run() -> dict:
    """A run that meets every goal, each at its target or a little past it."""
    screens = [_row(key, 0.35) for key in goals.SCREENS] + [_row("poll", 0.65), _row("canaille", 0.2, rps=1500.0)]
    api = [_row("accounts", 0.5, p99=60.0), _row("balances", 0.51), _row("transactions", 0.15)]
    return {"screens": {"rows": screens}, "api": {"rows": api},
            "waiting": {"p99_ms": 49.9, "errors": 0, "cores": 0.5},
            "flow": {"runs": [_flow("sqlite", per_second=40.0, worst_p99=150.0, rss=(80, 79)), _flow("postgres")]}}


def _met(run: dict) -> dict[str, bool]:
    return {goal: met for goal, _target, _figure, met in goals.judge(run)}


def test_a_run_at_every_target_meets_every_goal():
    judged = _met(passing_run())
    assert all(judged.values()), [goal for goal, met in judged.items() if not met]
    assert len(judged) == 7 * 3 + 1 + 3 + 1 + 2 * 2  # the 7 screens' three goals, poll, API, waiting, 2 engines × 2


@pytest.mark.parametrize("change, goal", [
    (lambda r: r["screens"]["rows"][2].update(ratio=0.349), "② GET / `/healthz`"),
    (lambda r: r["screens"]["rows"][0].update(p99=61.0), "① GET p99"),
    (lambda r: r["screens"]["rows"][0].update(errors=1), ("① GET / `/healthz`", "① GET p99")),
    (lambda r: r["screens"]["rows"][1].update(rps=1500.0), "① htmx GET against Canaille's login page"),
    (lambda r: r["screens"]["rows"][7].update(ratio=0.64), "④ poll / `/healthz`"),
    (lambda r: r["api"]["rows"][0].update(ratio=0.49), "`/accounts` / `/healthz`, p99"),
    (lambda r: r["api"]["rows"][1].update(p99=61.0), "`/accounts/balances` / `/healthz`, p99"),
    (lambda r: r["api"]["rows"][2].update(ratio=0.14), "transactions, 500 rows / `/healthz`, p99"),
    (lambda r: r["waiting"].update(p99_ms=50.0), "1,000 waiting on ④: p99"),
    (lambda r: r["flow"]["runs"][0].update(flows_per_s=39.9), "flows, SQLite"),
    (lambda r: r["flow"]["runs"][0].update(errors=1), "flows, SQLite"),
    (lambda r: r["flow"]["runs"][1]["steps"]["② POST"].update(p99_ms=151.0), "flows, PostgreSQL + Redis"),
    (lambda r: r["flow"]["runs"][1].update(rss_mb_after=[79, 81]), "worker RSS after the flows, PostgreSQL + Redis"),
])
def test_a_figure_just_past_its_target_misses_that_goal_alone(change, goal):
    run = copy.deepcopy(passing_run())
    change(run)
    judged = _met(run)
    assert [g for g, met in judged.items() if not met] == ([goal] if isinstance(goal, str) else list(goal))


def test_a_goal_without_figures_is_not_met():
    run = passing_run()
    run["screens"]["rows"] = [r for r in run["screens"]["rows"] if r["key"] != "canaille"]
    run["waiting"] = None
    run["flow"] = None  # bench_flow failed: neither engine measured
    missed = {goal: figure for goal, _target, figure, met in goals.judge(run) if not met}
    assert missed["⑥ GET against Canaille's login page"] == "Canaille not measured"
    assert missed["1,000 waiting on ④: p99"] == "not measured"
    assert missed["flows, SQLite"] == missed["flows, PostgreSQL + Redis"] == "not measured"


def test_an_engine_left_out_on_purpose_is_not_judged():
    run = passing_run()
    run["flow"]["runs"] = run["flow"]["runs"][:1]  # --engines sqlite
    assert not any("PostgreSQL" in goal for goal in _met(run))


def test_over_several_runs_a_goal_met_in_one_and_missed_in_the_next_is_not_met():
    slow = copy.deepcopy(passing_run())
    slow["flow"]["runs"][0]["flows_per_s"] = 35.1
    found = {v.goal: v for v in goals.verdicts([passing_run(), slow])}
    assert found["flows, SQLite"].met == [True, False]
    assert found["flows, SQLite"].summary == "1 of 2"
    assert found["flows, SQLite"].figures[1].startswith("35.1/s")
    assert found["① GET / `/healthz`"].summary == "2 of 2"


class FakeWrk:
    """wrk's figures, as bench_screens.Wrk.run returns them: `/healthz` 4,000 req/s, the endpoint 1,500."""

    def run(self, url, headers, connections, seconds, server_pid=None):
        bare = url.endswith("/healthz")
        return {"rps": 4000.0 if bare else 1500.0, "p99_ms": 20.0 if bare else 45.0, "cpu_ms": 0.3 if bare else 1.1,
                "errors": 0, "split": "8+8"}


def test_the_screens_benchmark_rows_carry_what_goals_reads():
    args = argparse.Namespace(connections=16, rounds=2, seconds=1)
    row = {"key": "account", "label": "① GET", "path": "/amami/flow/account", "headers": {}, "connections": 16}
    measured = {"key": row["key"], **bench_screens.measure_row(FakeWrk(), "http://x", "http://x", row, args, 1, 1)}
    run = passing_run()
    run["screens"]["rows"][0] = measured
    judged = {goal: figure for goal, _target, figure, _met in goals.judge(run)}
    assert judged["① GET / `/healthz`"] == "0.38"  # 1,500 / 4,000
    assert judged["① GET p99"] == "45 ms"


def test_the_flow_benchmark_figures_carry_what_goals_reads():
    args = argparse.Namespace(generator="wrk", customers=16)
    timings = {"① GET": [0.004] * 99 + [0.030], "② POST": [0.104] * 98 + [0.160, 0.170]}
    figures = bench_flow._figures("sqlite", args, 41.5, 622, 0, timings, ["68/42", "68/41"], ["75/49", "81/48"],
                                  24.9, {})
    run = passing_run()
    run["flow"]["runs"][0] = figures
    judged = {goal: (figure, met) for goal, _target, figure, met in goals.judge(run)}
    assert judged["flows, SQLite"] == ("41.5/s, 0 errors, worst p99 160 ms", False)  # ② POST's 99th of 100
    assert judged["worker RSS after the flows, SQLite"] == ("75 MB / 81 MB", False)
    assert figures["server_cpu_ms_a_flow"] == pytest.approx(24.9 / 622 * 1000)
