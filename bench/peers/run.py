"""Plait against Prefect 3 on the same workloads: `make bench-peers` (`python3 bench/peers/run.py`).

Installs the pinned Prefect (requirements-prefect.txt) into bench/peers/.venv-prefect if needed,
runs Plait's benchmark workloads (bench/run.py) with the project's venv and the same workloads on
Prefect 3 embedded (local ephemeral server, no external service) with the Prefect venv, one after
the other on this machine, then prints a Markdown table and writes it to last-results.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PLAIT_PYTHON = ROOT / ".venv" / "bin" / "python"
PREFECT_VENV = HERE / ".venv-prefect"
PREFECT_PYTHON = PREFECT_VENV / "bin" / "python"
REQUIREMENTS = HERE / "requirements-prefect.txt"
RESULTS = HERE / "last-results.md"


def ensure_prefect() -> None:
    """Create the Prefect venv and install the pinned requirements, unless already done."""
    stamp = PREFECT_VENV / ".installed-requirements"
    wanted = REQUIREMENTS.read_text()
    if stamp.exists() and stamp.read_text() == wanted and PREFECT_PYTHON.exists():
        return
    print(f"Installing Prefect into {PREFECT_VENV.relative_to(ROOT)} ...", file=sys.stderr)
    if not PREFECT_PYTHON.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PREFECT_VENV)], check=True)
    pip = [str(PREFECT_PYTHON), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    done = subprocess.run(
        [*pip, "install", "-r", str(REQUIREMENTS)], capture_output=True, text=True, check=False
    )
    if done.returncode:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit("could not install Prefect")
    stamp.write_text(wanted)


def run_workloads(python: Path, script: str) -> dict[str, Any]:
    """Run ``script`` with ``python``; its last line of output is the JSON of results."""
    print(f"Running {script} ...", file=sys.stderr)
    done = subprocess.run(
        [str(python), str(HERE / script)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"{script} failed with exit code {done.returncode}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def fmt(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def times(ratio: float) -> str:
    return f"{ratio:.1f}x" if ratio < 10 else f"{ratio:.0f}x"


def table(plait: dict[str, Any], prefect: dict[str, Any]) -> str:
    ours, theirs = plait["results"], prefect["results"]
    rows = []

    def row(label: str, key: str, unit: str, note: str = "") -> None:
        a, b = ours[key]["value"], theirs[key]["value"]
        ratio = a / b if unit == "/s" else b / a
        rows.append((label, f"{fmt(a)} {unit}", f"{fmt(b)} {unit}", times(ratio), note))

    def how(key: str, full: int, extra: str = "") -> str:
        """Plait: best of 3 (bench/run.py); Prefect: best of its repeats, maybe scaled."""
        n, repeat = theirs[key]["n"], theirs[key]["repeat"]
        parts = [f"Prefect: best of {repeat}" if repeat > 1 else "Prefect: one run", extra]
        if n != full:
            parts.append(f"measured at N={n} (the full N would pass 3 min), scaled to {full}")
        return "; ".join(filter(None, parts))

    empty = theirs["empty_flow"]["value"]
    row(
        "100 sequential trivial tasks",
        "seq100",
        "ms/task",
        how("seq100", 100, f"an empty flow alone takes {empty:.2f} s"),
    )
    row("1000 sequential trivial tasks", "seq1000", "ms/task", how("seq1000", 1000))
    row(
        "1000 sequential non-pure tasks (Plait: Sleep PT0S)",
        "durable1000",
        "ms/task",
        how("durable1000", 1000, "a `time.sleep(0)` task"),
    )
    row("fan-out of 1000 tasks (ForEach / `.map`)", "fanout1000", "s", how("fanout1000", 1000))
    for key, label in (("back_to_back", "back to back"), ("concurrent50", "50 at a time")):
        note = f"executions: Plait {ours[key]['n']}, Prefect {theirs[key]['n']}"
        failed = theirs[key].get("failed", 0)
        if failed:
            note += f" of which {failed} refused by Prefect's server (HTTP 503), not counted"
        row(f"3-task executions, {label}", key, "/s", note)
    row(
        "one-task flow as a whole new process (`plait run` / `python flow.py`)",
        "process",
        "s",
        f"median of {ours['process']['n']} (Plait) / {theirs['process']['n']} (Prefect)",
    )
    a, b = ours["memory"], theirs["memory"]
    rows.append(
        (
            "RSS after N executions of the 3-task flow (vs after N/10)",
            f"{a['last']:.0f} MiB (vs {a['first']:.0f}), N={a['n']}",
            f"{b['last']:.0f} MiB (vs {b['first']:.0f}), N={b['n']}",
            times(b["last"] / a["last"]),
            "Prefect: its process plus its temporary server, during the back-to-back run",
        )
    )
    lines = [
        f"Machine: {plait['cpus']} CPUs; Plait {plait['version']} on Python {plait['python']}; "
        f"Prefect {prefect['version']} on Python {prefect['python']}, embedded (local "
        "ephemeral server, SQLite, logging at WARNING, telemetry off).",
        "",
        "Ratio: how many times Plait is faster (Prefect time / Plait time, or Plait rate / "
        "Prefect rate); for memory, Prefect RSS / Plait RSS.",
        "",
        "| workload | Plait | Prefect 3 | ratio | note |",
        "| --- | --- | --- | --- | --- |",
        *("| " + " | ".join(r) + " |" for r in rows),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    if not PLAIT_PYTHON.exists():
        raise SystemExit(f"{PLAIT_PYTHON} is missing: run `make dev` first")
    ensure_prefect()
    plait = run_workloads(PLAIT_PYTHON, "plait_workloads.py")
    prefect = run_workloads(PREFECT_PYTHON, "prefect_workloads.py")
    text = table(plait, prefect)
    print(text)
    RESULTS.write_text("# Plait vs Prefect 3 (`make bench-peers`)\n\n" + text)


if __name__ == "__main__":
    main()
