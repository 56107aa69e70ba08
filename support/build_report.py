"""Build the release report from a run's Allure results: one self-contained HTML file.

    python -m support.build_report [--results allure-results] [--output allure-report]
                                   [--history allure-history.jsonl]

Runs Allure 3 (pinned in package.json, installed with ``npm ci`` the first time) with
``allurerc.mjs``, and writes ``allure-report/index.html``, which opens from disk with no
server. Next to it, the requirement coverage table as ``requirement-coverage.html`` (one
anchor per requirement: ``requirement-coverage.html#ISO-01``), ``.csv`` and ``.json``. The
same table is embedded in the report, under "Global Attachments" on its home page, beside
the isolation coverage by operation (ISO-08: every operation of the contract, and whether the
run performed it while others listened), also written as ``isolation-coverage.html`` and
``.csv``; an operation the run never exercised that way is listed as not covered. Each
build appends one line to the history file, which the report's History tabs and trend
charts read.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .meta_evidence import (
    DIRECTORY as PLANTED_RESULTS, area_summary, evidence_csv, meta_outcomes, read_proofs, stage_proofs,
)
from .benchmarks import RESULTS_DIR as BENCH_RESULTS, bench_results, performance_outcomes
from .operations import coverage_csv, coverage_html, coverage_rows
from .report_coverage import Coverage

REPO = Path(__file__).resolve().parent.parent
ALLURE = REPO / "node_modules" / ".bin" / "allure"
CONFIG = REPO / "allurerc.mjs"

# Allure 3.x's Awesome report always embeds Google Analytics (its template hard-codes it on).
# A release report of a security product must not call home when opened, so it is removed.
_ANALYTICS = re.compile(
    r'<script async src="https://www\.googletagmanager\.com/[^"]*"></script>\s*'
    r'<script>\s*window\.dataLayer.*?</script>', re.S)


# How the single-file report carries each of its data files: d("data/...","<base64>").
_EMBEDDED = re.compile(r'\bd\("(?P<path>[^"]+)","(?P<data>[A-Za-z0-9+/=]*)"\)')


class BuildError(RuntimeError):
    """The report could not be built; the message says why and what to do."""


@dataclass
class BuiltReport:
    index: Path
    coverage: Coverage
    seconds: float


def _node_packages_are_pinned() -> bool:
    """Every dependency of package.json is installed in node_modules at its pinned version."""
    try:
        pinned = json.loads((REPO / "package.json").read_text())["dependencies"]
        for name, version in pinned.items():
            installed = json.loads((REPO / "node_modules" / name / "package.json").read_text())["version"]
            if installed != version:
                return False
    except (OSError, ValueError, KeyError):
        return False
    return ALLURE.exists()


def ensure_node_packages() -> Path:
    """node_modules as package-lock.json pins it (Allure 3, the AsyncAPI parser), installed with
    ``npm ci`` when it is missing or stale. Several processes may ask at once (the report
    build, the contract documents' test): a lock file lets one install while the others wait.
    """
    if _node_packages_are_pinned():
        return REPO / "node_modules"
    npm = shutil.which("npm")
    if npm is None:
        raise BuildError("npm was not found: the report and the AsyncAPI check need Node.js 20 and npm "
                         "(Allure 3 and @asyncapi/parser come from the npm registry, pinned in package.json)")
    import fcntl

    with open(REPO / ".npm-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _node_packages_are_pinned():
            return REPO / "node_modules"
        print("[report] installing the pinned npm packages from package-lock.json (npm ci) ...",
              file=sys.stderr, flush=True)
        # No install-time telemetry (a dependency of the AsyncAPI parser would report otherwise).
        environment = {**os.environ, "SCARF_ANALYTICS": "false", "DO_NOT_TRACK": "1"}
        completed = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=REPO,
                                   capture_output=True, text=True, env=environment)
        if completed.returncode != 0 or not _node_packages_are_pinned():
            raise BuildError(f"npm ci failed ({completed.returncode}):\n{completed.stdout}{completed.stderr}")
    return REPO / "node_modules"


def ensure_allure() -> Path:
    """The pinned Allure 3 command line, installed with ``npm ci`` when node_modules lacks it."""
    ensure_node_packages()
    return ALLURE


def strip_analytics(index: Path) -> None:
    text = index.read_text(encoding="utf-8")
    text = _ANALYTICS.sub("", text)
    if "googletagmanager" in text:
        raise BuildError(f"{index} would load Google Analytics when opened, and the pattern that removes "
                         "it no longer matches: check support/build_report.py against this Allure version")
    index.write_text(text, encoding="utf-8")


def embedded_files(index: Path) -> dict[str, bytes]:
    """The data files a single-file report carries: path -> content (test results, attachments)."""
    text = Path(index).read_text(encoding="utf-8")
    return {match["path"]: base64.b64decode(match["data"]) for match in _EMBEDDED.finditer(text)}


def build(results: Path, output: Path, history: Path, planted: Path | None = None,
          benchmarks: Path | None = None) -> BuiltReport:
    """The report of ``results``; with ``planted``, META-02's evidence from the planted-defect tests
    too; with ``benchmarks``, PERF-01 and PERF-02 from bench/results (passing, failing, not run)."""
    started = time.monotonic()
    results, output, history = Path(results).resolve(), Path(output).resolve(), Path(history).resolve()
    if not any(results.glob("*-result.json")):
        raise BuildError(f"no Allure results in {results}: run the specification first (`behave`)")
    allure = ensure_allure()
    coverage = Coverage.from_allure_results(results)
    # META-02: the planted-defect tests' results, when they have run (tests/meta_evidence.py).
    proofs = read_proofs(planted) if planted is not None else []
    coverage.add_outcomes("META-02", meta_outcomes(proofs))
    if benchmarks is not None:
        for requirement, outcomes in performance_outcomes(bench_results(benchmarks)).items():
            coverage.add_outcomes(requirement, outcomes)
    history.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="report-") as staging:
        table = Path(staging) / "requirement-coverage.csv"
        table.write_text(coverage.to_csv(), encoding="utf-8")
        isolation_summary, isolation = coverage_rows(results)
        operations = Path(staging) / "isolation-coverage.csv"
        operations.write_text(coverage_csv(isolation), encoding="utf-8")
        inputs = [str(results)] + ([str(stage_proofs(planted, Path(staging) / "planted"))] if proofs else [])
        evidence = Path(staging) / "planted-defects-by-area.csv"
        evidence.write_text(evidence_csv(proofs), encoding="utf-8")
        environment = {**os.environ, "REPORT_OUTPUT": str(output), "REPORT_HISTORY": str(history),
                       "REPORT_COVERAGE": str(table), "REPORT_ISOLATION": str(operations),
                       "REPORT_PLANTED": str(evidence) if proofs else ""}
        completed = subprocess.run([str(allure), "generate", *inputs, "--config", str(CONFIG)],
                                   cwd=REPO, env=environment, capture_output=True, text=True)
    index = output / "index.html"
    if completed.returncode != 0 or not index.exists():
        raise BuildError(f"allure generate failed ({completed.returncode}):\n{completed.stdout}{completed.stderr}")
    strip_analytics(index)
    coverage.write(output)
    (output / "isolation-coverage.html").write_text(coverage_html(isolation_summary, isolation), encoding="utf-8")
    (output / "isolation-coverage.csv").write_text(coverage_csv(isolation), encoding="utf-8")
    (output / "planted-defects-by-area.csv").write_text(evidence_csv(proofs), encoding="utf-8")
    _point_manifest_at_the_table(output)
    return BuiltReport(index, coverage, time.monotonic() - started)


def _point_manifest_at_the_table(output: Path) -> None:
    """Allure lists the staged table in artifacts.json; point it at the copy next to the report."""
    manifest = output / "artifacts.json"
    if not manifest.exists():
        return
    entries = json.loads(manifest.read_text(encoding="utf-8"))
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("name") in ("requirement-coverage.csv", "isolation-coverage.csv",
                                                             "planted-defects-by-area.csv"):
            entry["path"] = entry["name"]
    manifest.write_text(json.dumps(entries), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m support.build_report", description=__doc__.split("\n")[0])
    parser.add_argument("--results", default=REPO / "allure-results", type=Path,
                        help="the run's Allure results (default: allure-results)")
    parser.add_argument("--output", default=REPO / "allure-report", type=Path,
                        help="where the report goes (default: allure-report)")
    parser.add_argument("--history", default=REPO / "allure-history.jsonl", type=Path,
                        help="the history kept across builds (default: allure-history.jsonl)")
    parser.add_argument("--planted", default=PLANTED_RESULTS, type=Path,
                        help="the planted-defect tests' results, META-02's evidence (default: planted-results, "
                             "written by `python -m pytest tests/test_planted_*.py`)")
    parser.add_argument("--benchmarks", default=BENCH_RESULTS, type=Path,
                        help="the benchmarks' results, PERF-01 and PERF-02 (default: bench/results; a quick "
                             "run counts as not run)")
    arguments = parser.parse_args(argv)
    try:
        report = build(arguments.results, arguments.output, arguments.history, arguments.planted,
                       arguments.benchmarks)
    except BuildError as error:
        print(f"[report] {error}", file=sys.stderr)
        return 2
    print(f"[report] {report.coverage.headline()}")
    print(f"[report] isolation coverage by operation: {coverage_rows(arguments.results)[0]}")
    print(f"[report] META-02, the suite proves itself per area: {area_summary(read_proofs(arguments.planted))}")
    print(f"[report] built in {report.seconds:.1f} s: {report.index} (open it from disk; the coverage "
          f"table is also in {report.index.parent / 'requirement-coverage.html'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
