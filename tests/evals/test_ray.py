"""Evals on a real local Ray cluster (2 worker CPUs, started once for the module): the same results and report as
a local run, a killed worker's units run again elsewhere, a killed driver resumes with nothing lost or redone."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from promptkit.backends import FunctionBackend, GenerateRequest, register_backend
from promptkit.evals import EvalLog, RayOptions, compare_variants, run_suite

ray = pytest.importorskip(
    "ray", reason="Ray is not installed (the `ray` extra: pip install 'promptkit[ray]')"
)

pytestmark = pytest.mark.slow

N_ITEMS = 8
REPEATS = 2
VARIANTS = 2
TOTAL = N_ITEMS * REPEATS * VARIANTS
DRIVER_PID = os.getpid()


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A local Ray instance with 2 worker CPUs; yields its GCS address (other drivers join it there)."""
    import ray.cloudpickle

    # Functions of this module travel by value: workers need not import the tests package.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def suite_text(model: str = "m1") -> str:
    return textwrap.dedent(
        f"""\
        name: ray-arithmetic
        variants:
          - {{name: plain, template: few_shot, examples: {{strategy: first_k, k: 0}}, inputs: {{instruction: Compute.}}}}
          - {{name: shots, template: few_shot, examples: {{strategy: random_k, k: 1}}, inputs: {{instruction: Compute.}}}}
        models: ["{model}"]
        dataset: {{path: data.jsonl, id_field: id, inputs: {{input: q}}, expected: a}}
        scorers:
          - {{type: numeric}}
        repeats: {REPEATS}
        concurrency: 4
        seed: 11
        cache: false
        """
    )


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROMPTKIT_HOME", str(tmp_path / "state"))
    rows = [{"id": f"i{n}", "q": f"{n} + {2 * n}", "a": str(3 * n)} for n in range(N_ITEMS)]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (tmp_path / "suite.yaml").write_text(suite_text(), encoding="utf-8")
    return tmp_path


def adder(
    calls: Path,
    *,
    kill_on: str | None = None,
    fail_on: str | None = None,
    local: bool = False,
    delay_s: float = 0.0,
) -> FunctionBackend:
    """Answers "a + b", wrongly for some (seed, question) pairs, so that the statistics depend on the seeds,
    and fails on ``fail_on``.
    Each call appends "pid question seed" to ``calls``. On a Ray worker (never in this process), the first
    call for question ``kill_on`` kills its own process, as a crash or an OOM kill would."""
    marker = calls.with_suffix(".killed")

    def answer(request: GenerateRequest) -> str:
        question = request.messages[-1].content
        with calls.open("a", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()}\t{question}\t{request.seed}\n")
        if kill_on == question and os.getpid() != DRIVER_PID:
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        if question == fail_on:
            raise ValueError("no answer for this one")  # a failed call: a result with its error, not a retry
        if delay_s:
            time.sleep(delay_s)
        a, b = (int(x) for x in question.split("+"))
        wrong = (request.seed or 0) % 3 == 0
        return f"The answer is {a + b + (1 if wrong else 0)}"

    backend = FunctionBackend(answer, name="m1")
    if local:
        backend.is_local = True  # type: ignore[attr-defined]  # runs on replicas (actors), like a GGUF
    return backend


def call_lines(calls: Path) -> list[tuple[int, str, int]]:
    if not calls.exists():
        return []
    out = []
    for line in calls.read_text(encoding="utf-8").splitlines():
        pid, question, seed = line.split("\t")
        out.append((int(pid), question, int(seed)))
    return out


def outcome(log: EvalLog) -> dict[tuple[str, str, str, int], dict[str, Any]]:
    """Each result without its timings (which no two runs share), by its key."""
    out = {}
    for result in log.results:
        data = result.model_dump(exclude={"latency_s"})
        data["attempts"] = [{k: v for k, v in a.items() if k != "latency_s"} for a in data["attempts"]]
        out[(result.variant, result.model, result.item_id, result.repeat)] = data
    assert len(out) == len(log.results), "a result appears twice"
    return out


def report(log: EvalLog) -> dict[str, Any]:
    """The A/B report's statistics, timings and the run's id dropped."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if "latency" not in k and k != "run_id"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(compare_variants(log).model_dump(mode="json"))  # type: ignore[no-any-return]


def local_run(project: Path) -> EvalLog:
    calls = project / "local-calls.txt"
    backends = {"m1": adder(calls, fail_on="5 + 10")}
    log = run_suite("suite.yaml", progress=False, cache=False, ledger=False, backends=backends)
    assert len({(q, s) for _, q, s in call_lines(calls)}) == N_ITEMS * REPEATS
    return log


@pytest.mark.parametrize("placement", ["tasks", "replicas"])
def test_ray_run_matches_the_local_run_and_reruns_a_killed_workers_unit(
    cluster: str, project: Path, placement: str
) -> None:
    expected = local_run(project)
    calls = project / "ray-calls.txt"
    replicas = placement == "replicas"
    options = RayOptions(replicas=2 if replicas else None)
    log = run_suite(
        "suite.yaml",
        progress=False,
        cache=False,
        ledger=False,
        backends={"m1": adder(calls, kill_on="3 + 6", fail_on="5 + 10", local=replicas)},
        ray=options,
    )
    stats = options.stats
    assert stats is not None
    # It ran on Ray's workers, never in this process, as tasks or on 2 replicas.
    lines = call_lines(calls)
    assert lines and all(pid != DRIVER_PID for pid, _, _ in lines)
    if replicas:
        assert stats.replicas == {"m1": 2} and stats.tasks == 0
    else:
        assert stats.replicas == {} and stats.tasks >= TOTAL
    # The worker running the first "3 + 6" died; that unit (and any queued behind it on a replica) ran again,
    # in another process.
    killed = [pid for pid, question, _ in lines if question == "3 + 6"]
    assert (project / "ray-calls.killed").exists()
    assert stats.retried and any("/i3/" in r for r in stats.retried), stats.retried
    assert len(set(killed)) >= 2, killed
    # Everything once, the same answers and scores, the same statistics.
    assert log.status == "complete" and len(log.results) == TOTAL
    assert outcome(log) == outcome(expected)
    assert (
        sum(1 for r in log.results if r.error and "no answer for this one" in r.error) == VARIANTS * REPEATS
    )
    assert report(log) == report(expected)
    assert log.aggregates == expected.aggregates
    # Seeds are the local run's: derived from (suite seed, item, repeat), not from where a unit ran.
    local_calls = call_lines(project / "local-calls.txt")
    assert {(q, s) for _, q, s in lines} == {(q, s) for _, q, s in local_calls}


DRIVER = """
import time
from promptkit.backends import FunctionBackend
from promptkit.evals import RayOptions, run_suite

def answer(request):
    question = request.messages[-1].content
    with open("calls.txt", "a") as handle:
        handle.write(f"driver1\\t{{question}}\\t{{request.seed}}\\n")
    time.sleep(0.15)
    a, b = (int(x) for x in question.split("+"))
    return f"The answer is {{a + b}}"

run_suite("suite.yaml", out="out/log.json", run_id="killed", progress=False, cache=False, ledger=False,
          backends={{"m1": FunctionBackend(answer, name="m1")}}, ray=RayOptions(address={address!r}))
print("finished", flush=True)
"""


def test_driver_killed_mid_run_resumes_with_nothing_lost_or_redone(cluster: str, project: Path) -> None:
    (project / "driver.py").write_text(DRIVER.format(address=cluster), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.Popen([sys.executable, "driver.py"], cwd=project, env=env, stdout=subprocess.PIPE)
    db = project / "out" / "killed.sqlite"
    journal = db.with_name(db.name + ".pending")
    recorded = 0
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    with sqlite3.connect(db) as conn:
                        recorded = conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
                except sqlite3.OperationalError:
                    recorded = 0  # the schema is not there yet
                journaled = len(journal.read_bytes().splitlines()) if journal.exists() else 0
                if recorded + journaled >= 6:
                    break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with sqlite3.connect(db) as conn:
        before = {
            (v, m, i, r): d
            for v, m, i, r, d in conn.execute("SELECT variant, model, item_id, repeat, data FROM results")
        }
    for line in journal.read_bytes().splitlines() if journal.exists() else []:
        v, m, i, r, d = json.loads(line)
        before.setdefault((v, m, i, r), d)  # scored, journaled, not yet committed when the kill came
    assert 6 <= len(before) < TOTAL, len(before)
    time.sleep(0.5)  # the dead driver's tasks are cancelled by Ray; let the last of them stop writing
    first_calls = len((project / "calls.txt").read_text().splitlines())

    calls = project / "resume-calls.txt"
    log = run_suite(
        "suite.yaml",
        resume="killed",  # found next to out/log.json, which the resumed run writes again
        progress=False,
        cache=False,
        ledger=False,
        backends={"m1": adder(calls)},
        ray=RayOptions(address=cluster),
    )
    keys = Counter((r.variant, r.model, r.item_id, r.repeat) for r in log.results)
    assert len(keys) == TOTAL and set(keys.values()) == {1}
    resumed = call_lines(calls)
    assert len(resumed) == TOTAL - len(before)  # nothing that came back before the kill runs again
    for result in log.results:
        key = (result.variant, result.model, result.item_id, result.repeat)
        if key in before:
            assert result.model_dump_json() == before[key]  # nothing that came back was lost or rewritten
    # Only the killed driver's units still in flight (at most the suite's concurrency, 4) were lost and made
    # twice: every other result had come back to the run log as it finished.
    assert len(before) <= first_calls <= len(before) + 4, (first_calls, len(before))
    assert log.status == "complete"
    assert EvalLog.model_validate_json((project / "out" / "log.json").read_text()).run_id == "killed"


def _cli_adder(target: str, **options: object) -> FunctionBackend:
    def answer(request: GenerateRequest) -> str:
        a, b = (int(x) for x in request.messages[-1].content.split("+"))
        return f"The answer is {a + b + (0 if target == 'right' else 1)}"

    return FunctionBackend(answer, name=f"raycli-{target}")


def test_cli_ray_flag_runs_a_scheme_registered_in_the_driver(
    cluster: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from promptkit.cli import main

    register_backend("raycli", _cli_adder)  # registered here only: the run takes it to the workers
    (project / "suite.yaml").write_text(suite_text("raycli:wrong"), encoding="utf-8")
    code = main(["eval", "suite.yaml", "--model", "raycli:right", "--ray", "--out", "o.json", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    out = json.loads(captured.out)
    assert out["summary"][0]["model"] == "raycli:right" and out["summary"][0]["pass_rate"] == 1.0
    assert "ray: " in captured.err and f"{TOTAL} task(s)" in captured.err
    assert len(EvalLog.model_validate_json((project / "o.json").read_text()).results) == TOTAL


def test_a_local_gguf_runs_on_replicas_with_the_local_runs_answers(
    cluster: str, project: Path, tiny_gguf: Path
) -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (the `local` extra)")
    (project / "promptkit.toml").write_text(
        f'[models.tiny]\nmodel = "local:{tiny_gguf}"\nn_threads = 1\nn_ctx = 1024\nmax_tokens = 6\n',
        encoding="utf-8",
    )
    (project / "suite.yaml").write_text(
        suite_text("tiny").replace(f"repeats: {REPEATS}", "repeats: 1"), encoding="utf-8"
    )
    expected = run_suite("suite.yaml", progress=False, cache=False, ledger=False)
    options = RayOptions(replicas=2)
    log = run_suite("suite.yaml", progress=False, cache=False, ledger=False, ray=options)
    assert options.stats is not None and options.stats.replicas == {"tiny": 2}
    assert options.stats.actor_calls == N_ITEMS * VARIANTS and not options.stats.retried
    assert outcome(log) == outcome(expected)  # random weights, greedy: the same tokens on every replica


def test_importing_promptkit_does_not_import_ray() -> None:
    code = (
        "import sys, promptkit, promptkit.evals, promptkit.cli.eval\n"
        "from promptkit.evals import RayOptions\n"
        "print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
