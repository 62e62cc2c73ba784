"""The openai answerer against a faulty server: every fault becomes a recorded failure or an
answer, never an exception; retries recover; Retry-After is honoured; no secret leaks."""

import base64

import pytest

from babilab.errors import BabilabError
from babilab.models import Request, load_answerer
from babilab.models.base import redact
from babilab.models.openai import OpenAIAnswerer, retry_after_s
from babilab.prompts import PromptConfig
from tests.models.fault_server import BEHAVIOURS, RETRY_AFTER, FaultServer, free_port

KEY = "sk-test-0123456789abcdef"
TIMEOUT_S = 0.3
# what each fault leaves in its answer's error when no retry is left
FAILURES = {"retry_after": "HTTP 429", "5xx": "HTTP 503", "hang": "ReadTimeout",
            "trickle": "ReadTimeout", "bad_json": "malformed reply (Unterminated string",
            "content_number": "malformed reply (the reply's content is a int, not text)",
            "no_choices": "malformed reply (no choices in the reply)",
            "null_content": "malformed reply (the reply's content is null or missing)",
            "echo_headers": "HTTP 500", "drop": "RemoteProtocolError",
            "drop_mid_body": "RemoteProtocolError"}
ANSWERED = {"ok": "garden", "slow": "garden", "echo_in_content": "Authorization: Bearer [redacted]"}


def request(question: str) -> Request:
    return Request(question, "qa1", "Mary went to the garden.", question)


def answerer(url: str, **options) -> OpenAIAnswerer:
    options = {"timeout_s": TIMEOUT_S, "backoff_s": 0.0, "concurrency": 16, **options}
    return load_answerer("openai:faulty", base_url=url, **options)


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def test_the_tables_cover_every_behaviour():
    assert set(FAILURES) | set(ANSWERED) == set(BEHAVIOURS)


def test_every_fault_is_an_answer_or_a_recorded_failure():
    with FaultServer({b: [b] for b in BEHAVIOURS}) as server:
        client = answerer(server.url, retries=0)
        answers = client.answer([request(b) for b in BEHAVIOURS], PromptConfig())
        client.close()
        assert sorted(q for q, _ in server.take_log()) == sorted(BEHAVIOURS)  # one request each
    for behaviour, answer in zip(BEHAVIOURS, answers, strict=True):
        if behaviour in ANSWERED:
            assert (answer.output, answer.error) == (ANSWERED[behaviour], None), behaviour
        else:
            assert answer.output == "" and answer.error.startswith(FAILURES[behaviour]), \
                (behaviour, answer.error)
        assert KEY not in answer.output + (answer.error or "")
    echoed = answers[BEHAVIOURS.index("echo_headers")].error
    assert "Bearer [redacted]" in echoed


def test_a_reply_past_the_timeout_is_cut_at_the_timeout():
    with FaultServer({"hang": ["hang"], "trickle": ["trickle"]}) as server:
        client = answerer(server.url, retries=0)
        answers = client.answer([request("hang"), request("trickle")], PromptConfig())
        client.close()
    assert all(a.error and TIMEOUT_S <= a.elapsed_s < 3 * TIMEOUT_S for a in answers), answers


def test_each_fault_once_then_the_retry_succeeds():
    faults = [b for b in FAILURES if b != "retry_after"]  # its wait has a test of its own
    with FaultServer({b: [b] for b in faults}) as server:
        client = answerer(server.url, retries=1)
        answers = client.answer([request(b) for b in faults], PromptConfig())
        client.close()
        assert all(server.attempts[b] == 2 for b in faults)
    assert [(a.output, a.error) for a in answers] == [("garden", None)] * len(faults)


def test_retry_after_is_honoured():
    with FaultServer({"busy": ["retry_after"]}) as server:
        client = answerer(server.url, retries=1)
        (answer,) = client.answer([request("busy")], PromptConfig())
        client.close()
        (_, first), (_, second) = server.take_log()
    assert answer.output == "garden" and second - first >= float(RETRY_AFTER) - 0.02


def test_retry_after_seconds_are_capped_and_dates_ignored():
    assert retry_after_s("0") == 0.0 and retry_after_s("2.5") == 2.5
    assert retry_after_s("999999") == 60.0
    assert retry_after_s(None) is retry_after_s("-1") is retry_after_s("nan") is None
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") is None


def test_an_unforeseen_exception_is_a_recorded_failure(monkeypatch):
    with FaultServer({}) as server:
        client = answerer(server.url)

        def explode(url, body):
            raise RuntimeError(f"bug while sending Bearer {KEY}")

        monkeypatch.setattr(client, "_attempt", explode)
        (answer,) = client.answer([request("q")], PromptConfig())
        client.close()
    assert answer.error == "RuntimeError: bug while sending Bearer [redacted]"


def test_a_url_password_never_shows(tmp_path):
    password = "pa55-w0rd-url"
    basic = base64.b64encode(f"me:{password}".encode()).decode()
    url = f"http://me:{password}@127.0.0.1:{free_port()}/v1"
    with pytest.raises(BabilabError) as caught:
        answerer(url)
    assert password not in str(caught.value) and "me:[redacted]@127.0.0.1" in str(caught.value)
    with FaultServer({"echo": ["echo_headers"]}) as server:
        client = answerer(server.url.replace("http://", f"http://me:{password}@"), retries=0)
        (answer,) = client.answer([request("echo")], PromptConfig())
        client.close()
    assert answer.error.startswith("HTTP 500") and "Basic [redacted]" in answer.error
    assert password not in answer.error and basic not in answer.error


@pytest.mark.parametrize("text", [
    f"Authorization: Bearer {KEY}", f'{{"authorization": "Bearer {KEY}"}}',
    f"{{'x-api-key': '{KEY}'}}", f"api_key={KEY}&model=m", f"the key {KEY} was sent",
])
def test_redact_removes_the_key_however_it_is_echoed(text):
    assert KEY not in redact(text, [KEY]) and "[redacted]" in redact(text, [KEY])
    if "key " not in text:  # a header credential goes even when the key itself is unknown
        assert KEY not in redact(text)
