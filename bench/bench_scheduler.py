"""The trigger loop with 10,000 one-minute cron schedules: `python bench/bench_scheduler.py`
(part of `make bench-triggers`).

100 flows of 100 ``* * * * *`` schedules each are deployed to a SQLite database; the loop (the
server's ``Scheduler``, in this process) is driven with a controllable clock, one pass per
simulated second as the server does, through three minutes. It measures:

- every tick fired once: executions created per tick == 10,000, and no (trigger, date) twice;
- the CPU (this process, all threads: the loop and the database thread) of the 59 passes
  between two ticks, as a share of one core over the 59 s they stand for;
- the CPU and wall time of the pass that fires a tick (10,000 executions created).

The executions are created and persisted, not run (``spawn`` closes them): this measures the
scheduler, not the engine. Prints a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from plait.engine._runner import Runner
from plait.files import LocalStorageBackend
from plait.runtime import plugin_host
from plait.server._scheduler import Scheduler
from plait.storage import SqlRepository

T0 = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)


def flow_source(index: int, schedules: int) -> str:
    triggers = "".join(
        f'  - id: s{n}\n    type: plait.core.Schedule\n    cron: "* * * * *"\n'
        for n in range(schedules)
    )
    return (
        f"id: f{index}\nnamespace: bench.sched\n"
        "tasks:\n  - id: log\n    type: plait.core.Log\n    message: tick\n"
        f"triggers:\n{triggers}"
    )


async def run(flows: int, per_flow: int, minutes: int) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        repo = SqlRepository.sqlite(Path(tmp) / "plait.db")
        await repo.open()
        runner = Runner(repo, plugin_host(), LocalStorageBackend(Path(tmp) / "storage"))
        try:
            began = time.perf_counter()
            for index in range(flows):
                await runner.deploy(flow_source(index, per_flow), file=f"f{index}.yaml")
            total = flows * per_flow
            rows.append((
                "schedules deployed",
                f"{total:,} ({flows} flows x {per_flow}), in {time.perf_counter() - began:.1f} s",
            ))  # fmt: skip

            def spawn(coro: Coroutine[Any, Any, Any], what: str) -> None:
                coro.close()  # created and persisted, not run: the scheduler alone is measured

            now = T0 + timedelta(seconds=30)
            scheduler = Scheduler(runner, repo, spawn, clock=lambda: now)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            await scheduler.evaluate(now)  # first pass: reads the flows, makes the state rows
            rows.append((
                "first pass (read 10,000 schedules, create their state rows)",
                f"{time.process_time() - cpu0:.2f} s CPU, {time.perf_counter() - wall0:.2f} s",
            ))  # fmt: skip
            fired: Counter[tuple[str, str]] = Counter()
            between: list[float] = []
            ticks: list[tuple[int, float, float]] = []
            for minute in range(1, minutes + 1):
                tick = T0 + timedelta(minutes=minute)
                cpu0, wall0 = time.process_time(), time.perf_counter()
                created = await scheduler.evaluate(tick)
                ticks.append(
                    (len(created), time.process_time() - cpu0, time.perf_counter() - wall0)
                )
                for execution in created:
                    trigger = execution.trigger or {}
                    fired[(f"{execution.flow_id}/{trigger['id']}", trigger["date"])] += 1
                cpu0 = time.process_time()
                for second in range(1, 60):
                    now = tick + timedelta(seconds=second)
                    assert await scheduler.evaluate(now) == []
                between.append(time.process_time() - cpu0)
            twice = sum(1 for n in fired.values() if n > 1)
            for minute, (count, cpu, wall) in enumerate(ticks, 1):
                rows.append((
                    f"tick {minute}: executions created",
                    f"{count:,} of {total:,} (pass: {cpu:.1f} s CPU, {wall:.1f} s wall, "
                    f"{count / wall:,.0f} executions/s)",
                ))  # fmt: skip
            rows.append(("a (trigger, date) fired twice", str(twice)))
            share = 100 * max(between) / 59
            rows.append((
                "loop CPU between ticks (59 passes, one a second)",
                f"{max(between) / 59 * 1000:.1f} ms CPU a pass, {share:.1f}% of one core "
                f"(worst minute of {minutes})",
            ))  # fmt: skip
            assert twice == 0, "a tick fired twice"
            assert all(c == total for c, _, _ in ticks), "a tick was lost"
        finally:
            await repo.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flows", type=int, default=100)
    parser.add_argument("--per-flow", type=int, default=100)
    parser.add_argument("--minutes", type=int, default=3)
    args = parser.parse_args()
    rows = asyncio.run(run(args.flows, args.per_flow, args.minutes))
    print("| measure | value |\n| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
