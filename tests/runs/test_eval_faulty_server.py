"""`babilab eval` of an openai model against a faulty server, end to end: every sample ends
scored or recorded as failed, the exit code says whether failures remain, a re-run asks
exactly the failed ones, and no secret reaches the run folder or the terminal."""

import sqlite3

from babilab.cli import EXIT_FAILED_PREDICTIONS, main
from babilab.suite import Sample, SuiteWriter
from tests.models.fault_server import FaultServer, free_port

KEY = "sk-test-0123456789abcdef"
PASSWORD = "pa55-w0rd-url"
# each question's requests, two per run with --retries 1; after its script a question is
# answered well, so the second run meets a healthy server
SCRIPTS = {
    "ok": [], "slow": ["slow"], "retry_after": ["retry_after"], "5xx": ["5xx"],
    "echo_in_content": ["echo_in_content"],
    "hang": ["hang", "hang"], "trickle": ["trickle", "trickle"], "bad_json": ["bad_json"] * 2,
    "content_number": ["content_number"] * 2, "no_choices": ["no_choices"] * 2,
    "null_content": ["null_content"] * 2, "echo_headers": ["echo_headers"] * 2,
    "drop": ["drop"] * 2, "drop_mid_body": ["drop_mid_body"] * 2,
}
FAILING = sorted(q for q, script in SCRIPTS.items() if len(script) == 2)


def write_suite(path, questions):
    """One qa1 sample per question, all answered by "garden"."""
    with SuiteWriter(path, {"fingerprint": f"faults-{len(questions)}", "config": {}}) as w:
        w.add_cell("qa1", "0k", [Sample("qa1", "0k", i, "Mary went to the garden.", q, "garden")
                                 for i, q in enumerate(questions)])
    return path


def eval_args(suite, run, url, retries=1):
    return ["eval", "--suite", str(suite), "--model", "openai:faulty", "--run", str(run),
            "--base-url", url, "--timeout", "0.3", "--retries", str(retries),
            "--concurrency", "16", "--batch-size", "32"]


def stored(run) -> dict[str, tuple[str, str | None]]:
    """question -> (output, error)"""
    with sqlite3.connect(run / "predictions.sqlite") as db:
        return {q: (o, e) for q, o, e in db.execute("SELECT question, output, error FROM predictions")}


def assert_nowhere(secrets, run, printed: list[str]):
    """No secret in any file under `run` (the store, its journal, scores, run.json) nor in
    what was printed."""
    texts = {"stdout/stderr": "".join(printed).encode()}
    texts |= {str(f): f.read_bytes() for f in run.rglob("*") if f.is_file()}
    for secret in secrets:
        leaks = [name for name, data in texts.items() if secret.encode() in data]
        assert not leaks, f"{secret} in {leaks}"


def test_faults_are_recorded_and_the_rerun_asks_exactly_those(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    suite, run = write_suite(tmp_path / "suite", list(SCRIPTS)), tmp_path / "run"
    with FaultServer(SCRIPTS) as server:
        assert main(eval_args(suite, run, server.url)) == EXIT_FAILED_PREDICTIONS
        first = capfd.readouterr()
        assert f"{len(FAILING)} failed" in first.out and "run the same command again" in first.err
        results = stored(run)
        assert len(results) == len(SCRIPTS)
        assert sorted(q for q, (_, error) in results.items() if error) == FAILING
        assert all(output == "" for q, (output, _) in results.items() if q in FAILING)
        assert results["retry_after"] == results["slow"] == ("garden", None)
        assert "Bearer [redacted]" in results["echo_headers"][1]
        server.take_log()

        assert main(eval_args(suite, run, server.url)) == 0
        second = capfd.readouterr()
        assert sorted(q for q, _ in server.take_log()) == FAILING  # each once, and only those
        assert all(error is None for _, error in stored(run).values())
        assert main(eval_args(suite, run, server.url)) == 0  # nothing left to ask
        assert server.take_log() == []
        third = capfd.readouterr()
    assert_nowhere([KEY], run, [x for c in (first, second, third) for x in c])


def test_a_url_password_stays_out_of_files_and_messages(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    suite, run = write_suite(tmp_path / "suite", ["echo_headers"]), tmp_path / "run"
    dead = f"http://me:{PASSWORD}@127.0.0.1:{free_port()}/v1"
    assert main(eval_args(suite, run, dead)) == 2
    unreachable = capfd.readouterr()
    assert "cannot reach http://me:[redacted]@127.0.0.1" in unreachable.err
    with FaultServer({"echo_headers": ["echo_headers"]}) as server:
        url = server.url.replace("http://", f"http://me:{PASSWORD}@")
        assert main(eval_args(suite, run, url, retries=0)) == EXIT_FAILED_PREDICTIONS
        echoed = capfd.readouterr()
    assert "Basic [redacted]" in stored(run)["echo_headers"][1]
    assert_nowhere([PASSWORD, KEY], run, [*unreachable, *echoed])
