"""The whole specification in several worker processes, each on an embedded deployment of its own.

The run is latency-bound (timers, the isolation backstop, round trips), not CPU-bound, so on
two cores four workers finish in well under half the time of one. Each worker is a behave run of
its own (``WorkerRunner``) with its own PostgreSQL, Redis and reference backends, so a
scenario that counts an instance's sockets, fills an instance or cuts its database and Redis
links never meets another worker's traffic. Features are handed out one at a time, longest
first (by the previous run's Allure results, else by size), to whichever worker is free.

The parent is behave's own run: environment.py starts its workers where behave would load the
step definitions, and before_all hands the run over (``run_in_workers_if_planned``). It runs
no step itself; it replays each worker's results, scenario by scenario, through behave's own
model and formatters, so the console, behave's summary, ``-f json`` and the exit code read
exactly as in a sequential run (features in the order they were handed out), and the requirement coverage, isolation coverage and frame-check summaries
are computed once over the whole run. Allure results are written by the workers into one
directory that the parent cleared once; the report's environment is written by the parent.

Parallel is the default only for the whole specification on the embedded default (no
TARGET_URL, DATABASE_URL or REDIS_URL; no feature path, tag, name filter, dry run or stop on
first failure). ``-D jobs=N`` (or ``SPEC_JOBS``) asks for N workers whatever the selection;
``-D jobs=1`` runs sequentially as before.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from behave.capture import Captured
from behave.formatter.base import Formatter
from behave.matchers import Match, NoMatch
from behave.model import Step
from behave.model_core import Status
from behave.model_type import Argument, FileLocation
from behave.runner import Context, Runner

from support.launcher import REPO_ROOT, guarded_command, say

# A worker's line that carries a record (everything else it prints is console text).
RECORD = "\x1eSPEC-RECORD "
JOBS_VARIABLE = "SPEC_JOBS"
# How often the parent's waits look whether it was interrupted.
WAKE_SECONDS = 0.1
# When nobody asked: two workers per core (the run mostly waits), at most four. Measured on two
# cores, alternating, the whole run took 21.3-24.2 s with four workers and 26.1-27.5 s with three.
AUTO_JOBS = min(4, max(2, 2 * (os.cpu_count() or 1)))
# Per scenario and per step, for a feature no earlier run timed (seconds; rough is enough:
# features are handed out as workers free up).
_ESTIMATE_SCENARIO, _ESTIMATE_STEP = 0.15, 0.02


class JobsError(ValueError):
    """``-D jobs`` / SPEC_JOBS is not a whole number of workers."""


def requested_jobs(config) -> int | None:
    """The number of workers asked for with ``-D jobs``, SPEC_JOBS or ``--jobs``; None when nobody asked."""
    raw = config.userdata.get("jobs", os.environ.get(JOBS_VARIABLE))
    if raw in (None, ""):
        return config.jobs if config.jobs and config.jobs > 1 else None
    try:
        jobs = int(str(raw).strip())
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise JobsError(f"-D jobs / {JOBS_VARIABLE} must be a whole number of workers (1 runs sequentially), "
                        f"got {raw!r}")
    return jobs


def planned_jobs(config) -> tuple[int, str]:
    """How many workers this run uses, and why (1: the sequential run, in this process)."""
    from support.settings import Settings

    asked = requested_jobs(config)
    try:
        settings = Settings.load(config.userdata)
    except ValueError:
        return 1, "the settings are read (and refused) by the sequential run"
    if settings.target_url is not None:
        return 1, "the target is an external deployment"
    if asked is not None:
        return asked, "asked for"
    if settings.database_url or settings.redis_url:
        return 1, "the run uses a PostgreSQL or Redis of the machine, which workers would share"
    whole = [str(Path(p).resolve()) for p in config.paths] == [str(REPO_ROOT / "features")]
    if not whole:
        return 1, "a selection of features is run"
    if config.tags or config.name or config.include_re or config.exclude_re:
        return 1, "a selection of scenarios is run"
    if config.dry_run or config.stop or config.wip:
        return 1, "a dry run or a run that stops at the first failure"
    return AUTO_JOBS, "the whole specification on the embedded default"


def expected_durations(results: Path) -> dict[str, float]:
    """Feature name -> seconds its scenarios took in the run that wrote ``results`` (Allure results)."""
    durations: Counter[str] = Counter()
    for path in Path(results).glob("*-result.json"):
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
            suite = next(label["value"] for label in result.get("labels", []) if label.get("name") == "suite")
            durations[suite] += max(0, result["stop"] - result["start"]) / 1000
        except (OSError, ValueError, KeyError, StopIteration, TypeError):
            continue
    return dict(durations)


def estimate(feature, durations: dict[str, float]) -> float:
    if feature.name in durations:
        return durations[feature.name]
    scenarios = list(feature.walk_scenarios(with_outlines=False))
    return len(scenarios) * _ESTIMATE_SCENARIO + sum(len(list(s.all_steps)) for s in scenarios) * _ESTIMATE_STEP


# -- the worker's side ------------------------------------------------------------------------


def emit(record: dict) -> None:
    """One record for the parent, on the worker's own stdout (in order with what behave prints)."""
    stream = sys.__stdout__
    stream.write(RECORD + json.dumps(record, default=str) + "\n")
    stream.flush()


def scenario_key(scenario) -> list:
    return [scenario.filename, scenario.line, scenario.name]


class ScenarioStream(Formatter):
    """A worker's only formatter: each scenario's outcome as one record, once its hooks are done."""

    name = "spec-worker-stream"
    description = "records for the parent of a parallel run (parallel_run.py)"

    def __init__(self, stream_opener, config):
        super().__init__(stream_opener, config)
        self._scenario = None
        self._last_match = None
        self._matches: dict[int, object] = {}

    def uri(self, uri):
        pass

    def feature(self, feature):
        self._feature = feature

    def scenario(self, scenario):
        self._finish_scenario()
        self._scenario = scenario
        emit({"kind": "scenario_start", "key": scenario_key(scenario)})

    def match(self, match):
        self._last_match = match

    def result(self, step):
        self._matches[id(step)] = self._last_match
        self._last_match = None

    def eof(self):
        self._finish_scenario()
        emit({"kind": "feature_end", "feature": self._feature.filename})

    def close(self):
        self._finish_scenario()

    def _finish_scenario(self) -> None:
        scenario, self._scenario = self._scenario, None
        if scenario is None:
            return
        captured = scenario.captured
        emit({
            "kind": "scenario", "key": scenario_key(scenario),
            "hook_failed": bool(scenario.hook_failed), "error_message": scenario.error_message,
            "skip_reason": scenario.skip_reason if scenario.should_skip else None,
            "captured": ({"stdout": captured.stdout, "stderr": captured.stderr, "log": captured.log}
                         if captured.has_output() else None),
            "steps": [self._step(step) for step in scenario.all_steps],
        })
        self._matches.clear()

    def _step(self, step) -> dict:
        match = self._matches.get(id(step))
        shown = None
        if match is not None and match.location is not None:
            shown = {"location": [match.location.filename, match.location.line],
                     "arguments": [[a.start, a.end, a.original, _scalar(a.value, a.original), a.name]
                                   for a in (match.arguments or [])]}
        return {"status": step.status.name, "duration": step.duration, "error_message": step.error_message,
                "matched": match is not None, "match": shown}


def _scalar(value, original):
    return value if isinstance(value, (str, int, float, bool)) or value is None else original


class WorkerRunner(Runner):
    """A worker: behave's own runner, on the features the parent hands out one at a time."""

    def run_with_paths(self):
        self.context = Context(self)
        self.load_hooks()
        self.load_step_definitions()
        from behave.formatter._registry import make_formatters
        from behave.runner_util import parse_features

        locations = [f for f in self.feature_locations() if not self.config.exclude(f)]
        self.features.extend(parse_features(locations, language=self.config.lang))
        self.formatters = make_formatters(self.config, self.config.outputs)
        by_file = {feature.filename: feature for feature in self.features}

        def handed_out():
            while not self.aborted:
                try:
                    emit({"kind": "next"})
                    line = sys.stdin.readline().strip()
                except KeyboardInterrupt:  # between features: behave's own catch is around a feature only
                    self.abort(reason="KeyboardInterrupt")
                    return
                if not line:
                    return
                yield by_file[line]

        failed = self.run_model(handed_out())
        emit({"kind": "end", "failed": bool(failed), "aborted": bool(self.aborted),
              "hook_failures": self.hook_failures})
        return failed


def write_worker_summary(path: str, harness) -> None:
    """What the parent merges over the whole run: environment, isolation observations, frame counts."""
    from support.report import run_environment

    summary = {"environment": run_environment(harness) if harness is not None else {},
               "observations": [], "frames": None}
    isolation = getattr(harness, "isolation", None)
    if isolation is not None:
        summary["observations"] = [vars(note) for note in isolation.observations]
    contract = getattr(harness, "contract", None)
    if contract is not None:
        summary["frames"] = {"counts": [[*key, n] for key, n in contract.counts.items()],
                             "problems": [[*key, n] for key, n in contract.problems.items()],
                             "seconds": contract.seconds}
    Path(path).write_text(json.dumps(summary), encoding="utf-8")


# -- the parent's side ------------------------------------------------------------------------


@dataclass
class FeatureRun:
    """One feature as a worker runs it: the records arrived so far."""

    feature: object
    worker: "Worker | None" = None
    records: dict = field(default_factory=dict)  # scenario key -> record
    text_before: dict = field(default_factory=dict)  # scenario key -> console text before it started
    text_after: list = field(default_factory=list)  # console text after its last scenario
    ended: bool = False


class Worker:
    """One worker process, and the thread that reads what it prints."""

    def __init__(self, number: int, command: list[str], run):
        self.number = number
        self.run = run
        self.current: FeatureRun | None = None
        self.end: dict | None = None
        self.tail: list[str] = []  # its last console lines, for a worker that dies
        # Its own process group: Ctrl-C reaches the parent only, which stops each worker once.
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(
            filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen(command, cwd=os.getcwd(), env=environment, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, bufsize=1, process_group=0)
        self.signalled = False
        self.asked = False  # for a first feature: its deployment is up
        self.finishing = False
        self.reader = threading.Thread(target=self._read, name=f"spec-worker-{number}", daemon=True)
        self.reader.start()

    @property
    def gone(self) -> bool:
        return not self.reader.is_alive()

    def _read(self) -> None:
        text: list[str] = []
        for line in self.process.stdout:
            if not line.startswith(RECORD):
                if not line.startswith("USING RUNNER:"):
                    text.append(line)
                    self.tail = (self.tail + [line])[-30:]
                continue
            record = json.loads(line[len(RECORD):])
            self.run.receive(self, record, text)
            text = []
        self.process.wait()
        self.run.receive(self, {"kind": "exit", "code": self.process.returncode}, text)

    def hand_out(self, filename: str) -> None:
        try:
            self.process.stdin.write(filename + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass

    def stop(self) -> None:
        """Ask the worker to stop (SIGTERM, which it treats as Ctrl-C), once."""
        if not self.signalled and not self.finishing and self.process.poll() is None:
            self.signalled = True
            try:
                os.kill(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def print_text(lines: list[str], worker: Worker | None = None) -> None:
    """A worker's console text, in the parent: its [spec] lines to stderr, the rest to stdout."""
    for line in lines:
        if line.startswith("[spec] "):
            if worker is not None:
                line = f"[spec] worker {worker.number}: " + line[len("[spec] "):]
            sys.__stderr__.write(line)
            sys.__stderr__.flush()
        else:
            sys.__stdout__.write(line)
            sys.__stdout__.flush()


class ParallelRun:
    """Hands features to workers, collects their records, and replays them into the parent's model."""

    def __init__(self, runner, jobs: int, results: Path | None):
        self.runner = runner
        self.results = results
        self.replaying: FeatureRun | None = None
        self.replaying_record: dict | None = None
        self.jobs = jobs
        self.changed = threading.Condition()
        self.pending: list[FeatureRun] = []
        self.by_file: dict[str, FeatureRun] = {}
        self.handed_out: list[FeatureRun] = []
        self.workers: list[Worker] = []
        self.late_text: list[tuple[Worker, list[str]]] = []
        # Ctrl-C or SIGTERM of the parent, seen by its waits below (see interrupt).
        self.interrupted = False
        self.workdir = Path(tempfile.mkdtemp(prefix="spec-parallel-"))  # the workers' summaries
        atexit.register(shutil.rmtree, self.workdir, True)

    # -- starting ---------------------------------------------------------------------------

    def spawn(self) -> None:
        """Start the workers; none gets a feature before ``start`` has made the plan."""
        with self.changed:
            self.planned = False
            for number in range(1, self.jobs + 1):
                self.workers.append(Worker(number, self._command(number), self))
            atexit.register(_stop_left_over, list(self.workers))

    def start(self) -> None:
        """While the workers start their deployments, plan the order of the features and clear the
        last run's results; return once each worker is up (or ended), so that their start-up lines
        come before the first feature."""
        with self.changed:
            self._plan()
            self.planned = True
            self.changed.notify_all()
        with self.changed:
            while not all(worker.asked or worker.gone for worker in self.workers) and not self.interrupted:
                self.changed.wait(WAKE_SECONDS)

    def _plan(self) -> None:
        from support.report import clear_previous_results

        durations = {}
        if self.results is not None:
            durations = expected_durations(self.results)  # the last run's, read before they are cleared
            self.results.mkdir(parents=True, exist_ok=True)
            clear_previous_results(self.results)
        features = self.runner.features
        # In place: behave's run goes through this very list, in the order the workers get them.
        features.sort(key=lambda feature: -estimate(feature, durations))
        self.pending = [FeatureRun(feature) for feature in features]
        self.by_file = {run.feature.filename: run for run in self.pending}

    def _command(self, number: int) -> list[str]:
        config = self.runner.config
        args = ["-m", "behave", "--runner", "parallel_run:WorkerRunner",
                "-f", "parallel_run:ScenarioStream", "--no-summary", "--no-snippets", "--no-color"]
        userdata = {**config.userdata, "allure_results": "off", "spec_worker": str(number),
            "spec_worker_summary": str(self.workdir / f"worker-{number}.json"), "jobs": "1"}
        if self.results is not None:
            userdata["allure_results"] = str(self.results.resolve())
        for name, value in userdata.items():
            args += ["-D", f"{name}={value}"]
        for tags in config.tags or []:
            args += ["--tags", tags]
        for name in config.name or []:
            args += ["--name", name]
        if config.include_re:
            args += ["--include", config.include_re]
        if config.exclude_re:
            args += ["--exclude", config.exclude_re]
        if not config.capture:
            args.append("--no-capture")
        if config.verbose:
            args.append("--verbose")
        return guarded_command([*args, *config.paths])

    # -- what the workers say ---------------------------------------------------------------

    def receive(self, worker: Worker, record: dict, text: list[str]) -> None:
        kind = record["kind"]
        with self.changed:
            if text and self.runner.aborted:
                print_text(text, worker)  # stopping: nothing more is replayed, so it is shown at once
                text = []
            if kind == "next":
                worker.asked = True
                while not self.planned:
                    self.changed.wait(0.5)
                if text:
                    print_text(text, worker)
                if worker.current is not None:  # a feature with no scenario to run ends without records
                    worker.current.ended = True
                run = self.pending.pop(0) if self.pending and not self.runner.aborted else None
                worker.current = run
                if run is not None:
                    run.worker = worker
                    self.handed_out.append(run)
                worker.finishing = run is None  # told there is no more: it stops on its own
                worker.hand_out(run.feature.filename if run is not None else "")
            elif kind == "scenario_start":
                if worker.current is not None:
                    worker.current.text_before[tuple(record["key"])] = text
            elif kind == "scenario":
                record["text"] = text
                if worker.current is not None:
                    worker.current.records[tuple(record["key"])] = record
            elif kind == "feature_end":
                if worker.current is not None:
                    worker.current.ended = True
                    worker.current.text_after = text
            elif kind in ("end", "exit"):
                if kind == "end":
                    worker.end = record
                elif worker.current is not None:
                    worker.current.ended = True
                if text:
                    if kind == "exit" and worker.end is None:
                        print_text(text, worker)  # it ended early: shown at once
                    else:
                        self.late_text.append((worker, text))
            self.changed.notify_all()

    # -- the parent's run, fed by the records -----------------------------------------------

    def record_of(self, scenario) -> dict | None:
        """The worker's record of ``scenario``: waits while a worker is on (or may yet get) its feature."""
        run = self.replaying
        key = tuple(scenario_key(scenario))
        if self.runner.aborted:
            return None
        with self.changed:
            while key not in run.records and not run.ended and not self.interrupted:
                if run.worker is None and all(w.gone for w in self.workers):
                    break
                self.changed.wait(WAKE_SECONDS)
            record = run.records.get(key)
        if self.interrupted:
            self.stop_now()
            return None
        return record

    def interrupt(self, signum, frame) -> None:
        """The parent's handler of SIGINT and SIGTERM: the waits see it within WAKE_SECONDS.

        It raises nothing the first time: a KeyboardInterrupt raised while the main thread holds
        the lock the workers' readers share would leave it held, and their output (a worker's
        "embedded services stopped" included) would never be printed. A second one raises.
        """
        if self.interrupted:
            raise KeyboardInterrupt(f"signal {signum}, again")
        self.interrupted = True

    def stop_now(self) -> None:
        """Interrupted: the run is aborted, and every worker asked (once) to stop now."""
        if not self.runner.aborted:
            self.runner.abort(reason="KeyboardInterrupt")
        for worker in self.workers:
            worker.stop()

    # -- the parent's hooks: the replay -----------------------------------------------------

    def before_feature(self, context, feature) -> None:
        self.replaying = self.by_file[feature.filename]

    def after_feature(self, context, feature) -> None:
        print_text(self.replaying.text_after)

    def before_scenario(self, context, scenario) -> None:
        run, runner = self.replaying, self.runner
        key = tuple(scenario_key(scenario))
        record = self.record_of(scenario)
        print_text(run.text_before.get(key, []))
        self.replaying_record = record
        runner.replaying_steps = list(record["steps"]) if record else []
        if record is None:
            worker = run.worker
            if runner.aborted or (worker is not None and worker.end and worker.end["aborted"]):
                runner.abort(reason="a worker was stopped")
                return
            if worker is None:
                raise RuntimeError("no worker was left to run this scenario: every one of them ended early "
                                   "(see their output above)")
            raise RuntimeError(f"worker {worker.number} ended (exit code {worker.process.poll()}) before this "
                               f"scenario ran; its output ends:\n{''.join(worker.tail[-10:])}")
        if record["skip_reason"]:
            scenario.skip()  # without behave's log line: the worker said why
            scenario.skip_reason = record["skip_reason"]
        if record["hook_failed"] and "HOOK-ERROR in before_scenario" in (record["error_message"] or ""):
            self._fail_hook(scenario, record)

    def after_scenario(self, context, scenario) -> None:
        record, self.replaying_record = self.replaying_record, None
        self.runner.replaying_steps = []
        if record is None:
            return
        if record["captured"]:
            scenario.captured.add_captured(Captured(name="scenario", failed=True, **record["captured"]))
        print_text(record["text"])
        if record["hook_failed"] and not scenario.hook_failed:
            self._fail_hook(scenario, record)

    def _fail_hook(self, scenario, record) -> None:
        scenario.hook_failed = True
        scenario.error_message = record["error_message"]
        self.runner.hook_failures += 1

    def after_all(self, context) -> None:
        from support.report import finish_run

        runner = self.runner
        self.stop_workers()
        for worker, text in self.late_text:
            print_text(text, worker)
        for worker in self.workers:
            if worker.process.returncode != 0 and not runner.aborted:
                runner.hook_failures += 1  # its failures in scenarios are replayed; one outside them is not
            if worker.end is None and not runner.aborted:
                say(f"worker {worker.number} ended with exit code {worker.process.returncode} before it finished")
        finish_run(runner, MergedRun(self.summaries()), self.results)

    def stop_workers(self, timeout: float = 60.0) -> None:
        """Wait for every worker to end (asking each to stop first if the run was interrupted)."""
        if self.runner.aborted or self.interrupted:
            self.stop_now()
        deadline = time.monotonic() + timeout
        for worker in self.workers:
            while True:
                try:
                    worker.process.wait(WAKE_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    if self.interrupted:
                        self.stop_now()  # interrupted while waiting: the workers still going stop now
                    if time.monotonic() > deadline:
                        say(f"worker {worker.number} did not stop within {timeout:.0f} s; killed")
                        worker.kill()
            worker.reader.join(5)

    def summaries(self) -> list[dict]:
        found = []
        for worker in self.workers:
            path = self.workdir / f"worker-{worker.number}.json"
            if path.is_file():
                found.append(json.loads(path.read_text(encoding="utf-8")))
        return found


def _stop_left_over(workers: list[Worker]) -> None:
    """At exit, a last resort: no worker outlives the parent (each stops what it started)."""
    for worker in workers:
        worker.stop()
    for worker in workers:
        try:
            worker.process.wait(60)
        except subprocess.TimeoutExpired:
            worker.kill()


def _allure_on(config) -> bool:
    return str(config.userdata.get("allure_results", "allure-results")).lower() not in ("", "off", "none")


class MergedRun:
    """The run's facts over every worker, read by support/report.py's finish_run like a harness."""

    def __init__(self, summaries: list[dict]):
        from support.catalogue import RequirementCatalogue
        from support.contract_schema import ContractValidator
        from support.operations import Inventory, IsolationCoverage, Observation

        self.catalogue = RequirementCatalogue.load()
        self.isolation = IsolationCoverage(Inventory.load())
        self.contract = None
        self.environments = [summary["environment"] for summary in summaries]
        for summary in summaries:
            self.isolation.observations += [Observation(**{**note, "watchers": tuple(note["watchers"])})
                                            for note in summary["observations"]]
            frames = summary.get("frames")
            if frames is not None:
                if self.contract is None:
                    self.contract = ContractValidator.load()
                for *key, n in frames["counts"]:
                    self.contract.counts[tuple(key)] += n
                for *key, n in frames["problems"]:
                    self.contract.problems[tuple(key)] += n
                self.contract.seconds += frames["seconds"]

    def run_environment(self, coverage=None) -> dict[str, str]:
        """Each worker's environment, values that differ listed once each; the summaries over the run."""
        merged: dict[str, list[str]] = {}
        for environment in self.environments:
            for key, value in environment.items():
                for part in value.split(", ") if key in _LISTS else [value]:
                    merged.setdefault(key, [])
                    if part not in merged[key]:
                        merged[key].append(part)
        environment = {key: ", ".join(values) for key, values in merged.items()}
        if self.contract is not None:
            for key in [k for k in environment if k.startswith("Frames checked against")]:
                environment[key] = self.contract.summary()
        if coverage is not None:
            environment["Requirements"] = coverage.short_summary()
        environment["Isolation coverage by operation"] = self.isolation.summary()
        environment["Workers"] = f"{len(self.environments)}, each with an embedded deployment of its own"
        return environment


_LISTS = ("Target", "Backend version", "Mode")


def _replay_step(step, runner, quiet=False, capture=True):
    """Step.run in the parent of a parallel run: the worker's outcome of the step, told to the formatters."""
    steps = getattr(runner, "replaying_steps", None)
    record = steps.pop(0) if steps else None
    if record is None or not _defined(record):
        step.status = Status.undefined
        runner.undefined_steps.append(step)
        match = NoMatch()
    else:
        step.status = Status[record["status"]]
        step.duration = record["duration"] or 0
        step.error_message = record["error_message"]
        match = Match(func=None, arguments=[Argument(start, end, original, value, name)
                                            for start, end, original, value, name in record["match"]["arguments"]]
                      ) if record["match"] else NoMatch()
        if record["match"]:
            match.location = FileLocation(*record["match"]["location"])
    if not quiet:
        for formatter in runner.formatters:
            formatter.match(match)
            formatter.result(step)
    return not step.status.has_failed() and step.status != Status.undefined


class _ReplayRegistry:
    """The parent's step registry: a step is defined when the worker found a definition for it."""

    def __init__(self, runner):
        self.runner = runner

    def find_match(self, step):
        steps = getattr(self.runner, "replaying_steps", None)
        record = steps.pop(0) if steps else None
        return NoMatch() if record is not None and _defined(record) else None  # anything but None: defined


def _defined(record: dict) -> bool:
    return record["status"] not in ("undefined", "untested_undefined")


def start_workers_before_the_steps_load(runner_class=Runner) -> None:
    """From environment.py, as behave reads it: a parent starts its workers instead of loading steps.

    behave loads the step definitions right after environment.py; a parent runs no step, so it
    starts its workers there instead, and they start their deployments while it parses the
    features (before_all, ``run_in_workers_if_planned``, then takes the run over).
    """
    if getattr(runner_class, "spec_workers_installed", False):
        return
    load_step_definitions = runner_class.load_step_definitions

    def start_workers_or_load_steps(runner, *args, **kwargs):
        try:
            jobs, reason = planned_jobs(runner.config)
        except JobsError:
            jobs, reason = 1, ""  # refused, in words, by before_all
        if jobs <= 1:
            return load_step_definitions(runner, *args, **kwargs)
        config = runner.config
        results = Path(config.userdata.get("allure_results", "allure-results")) if _allure_on(config) else None
        say(f"{jobs} workers, each with an embedded deployment of its own ({reason}; -D jobs=1 runs in one)")
        runner.spec_parallel = ParallelRun(runner, jobs, results)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, runner.spec_parallel.interrupt)
        runner.spec_parallel.spawn()

    runner_class.load_step_definitions = start_workers_or_load_steps
    runner_class.spec_workers_installed = True


def run_in_workers_if_planned(context) -> bool:
    """From before_all: hand the run to the workers started for it; False leaves it to this process.

    behave's runner goes on as usual (its model, formatters, summary and exit code), but its
    hooks become the replay of the workers' records and its steps are not run here.
    """
    runner = context._runner
    requested_jobs(runner.config)  # a malformed -D jobs is refused here, in words
    parallel = getattr(runner, "spec_parallel", None)
    if parallel is None:
        return False
    runner.step_registry = _ReplayRegistry(runner)
    runner.replaying_steps = []
    Step.run = _replay_step  # this process is the parent: it runs no step
    runner.hooks = {"before_feature": parallel.before_feature, "after_feature": parallel.after_feature,
                    "before_scenario": parallel.before_scenario, "after_scenario": parallel.after_scenario,
                    "after_all": parallel.after_all}
    parallel.start()
    return True
