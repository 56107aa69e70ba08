"""The benchmarks' thresholds and results, for the benchmarks themselves and the release report.

Each benchmark under bench/ reads its table of bench/thresholds.toml, measures, and writes
bench/results/<name>.json: what it measured, each check against its threshold, and whether
the run passed. ``bench_results()`` reads them back for the report, one entry per benchmark
named in the thresholds file, "not run" for one without a result.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
THRESHOLDS_FILE = REPO_ROOT / "bench" / "thresholds.toml"
RESULTS_DIR = REPO_ROOT / "bench" / "results"

PASSING, FAILING, NOT_RUN = "passing", "failing", "not run"


def thresholds(name: str, path: Path = THRESHOLDS_FILE) -> dict:
    """The thresholds table of the benchmark ``name``."""
    with open(path, "rb") as file:
        tables = tomllib.load(file)
    try:
        return tables[name]
    except KeyError:
        raise KeyError(f"{path} has no [{name}] table; it has {', '.join(tables)}") from None


@dataclass(frozen=True)
class Check:
    """One measured figure against its threshold."""

    name: str
    measured: float
    limit: float
    at_least: bool  # True: measured must be >= limit; False: <= limit

    @property
    def passed(self) -> bool:
        return self.measured >= self.limit if self.at_least else self.measured <= self.limit

    def __str__(self) -> str:
        relation = ">=" if self.at_least else "<="
        return f"{self.name} {_figure(self.measured)} (threshold {relation} {_figure(self.limit)}): " \
               f"{'pass' if self.passed else 'FAIL'}"


def _figure(value: float) -> str:
    """A measured figure as a person reads it: 2,260 and 0.885, never 2.26e+03."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.0f}"


def check_at_least(name: str, measured: float, limit: float) -> Check:
    return Check(name, measured, limit, True)


def check_at_most(name: str, measured: float, limit: float) -> Check:
    return Check(name, measured, limit, False)


def write_result(name: str, *, measured: dict, checks: list[Check], quick: bool, command: list[str] | None = None,
                 results_dir: Path | None = None) -> Path:
    """Write bench/results/<name>.json (or under ``results_dir`` / $BENCH_RESULTS_DIR); return its path."""
    directory = Path(results_dir or os.environ.get("BENCH_RESULTS_DIR") or RESULTS_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    table = thresholds(name)
    result = {
        "benchmark": name,
        "requirements": table.get("requirements", []),
        "passed": all(c.passed for c in checks),
        "quick": quick,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "command": command if command is not None else [os.path.basename(sys.executable), *sys.argv],
        "measured": measured,
        "checks": [{**asdict(c), "passed": c.passed} for c in checks],
    }
    path = directory / f"{name}.json"
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(result, indent=2) + "\n")
    temporary.replace(path)
    return path


def bench_results(results_dir: Path | None = None, thresholds_file: Path = THRESHOLDS_FILE) -> dict[str, dict]:
    """Every benchmark of the thresholds file and its last result, for the release report.

    ``{name: {"status": "passing" | "failing" | "not run", "requirements": [...],
    "quick": bool, "finished_at": str, "checks": [...], "measured": {...}}}``; a result
    that cannot be read counts as not run, with the reason in "error". A quick run's result
    is reported with "quick": True (its sizes are too small to verify a load requirement).
    """
    directory = Path(results_dir or os.environ.get("BENCH_RESULTS_DIR") or RESULTS_DIR)
    with open(thresholds_file, "rb") as file:
        tables = tomllib.load(file)
    found: dict[str, dict] = {}
    for name, table in tables.items():
        entry = {"status": NOT_RUN, "requirements": table.get("requirements", [])}
        path = directory / f"{name}.json"
        if path.exists():
            try:
                result = json.loads(path.read_text())
                entry.update(status=PASSING if result["passed"] else FAILING, quick=result.get("quick", False),
                             finished_at=result.get("finished_at"), checks=result.get("checks", []),
                             measured=result.get("measured", {}))
            except (OSError, ValueError, KeyError) as error:
                entry["error"] = f"{path.name} could not be read: {error}"
        found[name] = entry
    return found


def requirement_statuses(results: dict[str, dict] | None = None) -> dict[str, str]:
    """Each requirement named by a benchmark, and its status over them: failing if any failed,
    passing if all that ran passed, not run if none ran."""
    results = bench_results() if results is None else results
    statuses: dict[str, list[str]] = {}
    for entry in results.values():
        for requirement in entry["requirements"]:
            statuses.setdefault(requirement, []).append(entry["status"])
    summary = {}
    for requirement, seen in statuses.items():
        ran = [s for s in seen if s != NOT_RUN]
        summary[requirement] = FAILING if FAILING in ran else PASSING if ran else NOT_RUN
    return summary


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime 14 and stime 15 (1-based, proc(5)).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def performance_outcomes(results: dict[str, dict] | None = None) -> dict[str, list]:
    """PERF-* requirement -> one outcome per benchmark naming it, for the report's coverage.

    A benchmark that has not run, or ran only in its quick mode (sizes too small to verify a
    load requirement), counts as not run; only a full run passes or fails its requirement.
    """
    from .report_coverage import FAILED, PASSED, SKIPPED, ScenarioOutcome

    results = bench_results() if results is None else results
    outcomes: dict[str, list] = {}
    for name, entry in results.items():
        status = entry["status"]
        if entry.get("quick"):
            outcome, said = SKIPPED, f"benchmark {name}: quick run only"
        else:
            outcome = {PASSING: PASSED, FAILING: FAILED}.get(status, SKIPPED)
            said = f"benchmark {name}: {status}"
        for requirement in entry["requirements"]:
            if requirement.startswith("PERF-"):
                outcomes.setdefault(requirement, []).append(ScenarioOutcome(said, outcome))
    return outcomes
