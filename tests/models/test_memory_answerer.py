"""The memory answerers (`memory`, `rmt`, `rmt_r`, `armt`) on tiny checkpoints saved in tmp_path.

A tiny random Llama backbone and a byte-level BPE tokenizer trained here on a few sentences:
no downloads, a few seconds on a CPU. Untrained memory answers badly; these tests check the
plumbing: order, one answer per request, inputs far over the backbone's window, the
fingerprint, the save/load round trip through the answerer, and `babilab eval`.
"""

from __future__ import annotations

import os
import shutil
import signal

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

import babilab.models.memory as memory_answerer
from babilab.cli import main
from babilab.errors import BabilabError
from babilab.memory import ARMT, RMT, RMTR, ARMTConfig, RMTConfig, RMTRConfig
from babilab.models import ANSWERERS, Request, load_answerer
from babilab.models.memory import (
    chunk_bounds,
    encode_long,
    n_segments,
    question_text,
    save_checkpoint,
    stream_segments,
)
from babilab.prompts import PromptConfig
from babilab.runs import evaluate
from babilab.runs.store import RunStore

WINDOW = 64  # the backbone's max_position_embeddings: every context below is longer
SEGMENT = 16
SENTENCES = ["Mary went to the garden.", "John moved to the kitchen.", "Sandra journeyed to the "
             "hallway.", "Daniel travelled to the office.", "Where is Mary?", "Where is John?"]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # toy sizes: extra threads only cost
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tokenizer():
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<eos>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    corpus = SENTENCES + [question_text(q) for q in SENTENCES[4:]]
    backend.train_from_iterator(corpus * 10, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>")


def tiny_backbone(tokenizer, seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        num_hidden_layers=2, hidden_size=32, intermediate_size=64, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=len(tokenizer), max_position_embeddings=WINDOW,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id, initializer_range=0.2,
    )
    return LlamaForCausalLM(config).eval()


def tiny_memory_model(arch: str, backbone, seed: int = 1):
    torch.manual_seed(seed)
    if arch == "rmt":
        return RMT(backbone, RMTConfig(segment_size=SEGMENT, num_mem_tokens=4)).eval()
    if arch == "rmt_r":
        return RMTR(backbone, RMTRConfig(segment_size=SEGMENT, num_read_mem_tokens=6,
                                         num_write_mem_tokens=4)).eval()
    model = ARMT(backbone, ARMTConfig(segment_size=SEGMENT, num_mem_tokens=4, d_mem=4, nu=2)).eval()
    with torch.no_grad():  # W_V starts at zero (nothing stored); make the memory carry something
        for layer in model.assoc:
            layer.v_proj.weight.normal_(std=0.3)
    return model


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, tokenizer):
    """One saved checkpoint per architecture (backbone saved with it) and its in-memory model."""
    root = tmp_path_factory.mktemp("memory-checkpoints")
    saved = {}
    for arch in ("rmt", "rmt_r", "armt"):
        model = tiny_memory_model(arch, tiny_backbone(tokenizer))
        saved[arch] = (save_checkpoint(model, tokenizer, root / arch, save_backbone=True), model)
    return saved


def requests(n: int = 5) -> list[Request]:
    """Contexts from 0 to about 20x the backbone's window, in no particular order."""
    rng = np.random.default_rng(0)
    out = []
    for i, repeat in enumerate([3, 0, 40, 1, 12, 25, 7][:n]):
        facts = " ".join(rng.choice(SENTENCES[:4], size=repeat)) if repeat else ""
        out.append(Request(f"qa1/x/{i}", "qa1", facts, SENTENCES[4 + i % 2]))
    return out


def reference_outputs(model, tokenizer, reqs: list[Request], max_new_tokens: int) -> list[str]:
    """What the saved model itself generates, one request at a time, straight from the API."""
    outputs = []
    for r in reqs:
        context = np.asarray(tokenizer(r.context, add_special_tokens=False)["input_ids"], dtype=np.int64)
        question = tokenizer(question_text(r.question), add_special_tokens=False)["input_ids"]
        # unpadded, one request at a time: the answerer's padding and batching must not matter
        steps = stream_segments([context], [question], model.config.segment_size, model.config.align)
        tokens = model.generate(steps, max_new_tokens=max_new_tokens,
                                eos_token_id=tokenizer.eos_token_id).tokens[0].tolist()
        if tokenizer.eos_token_id in tokens:
            tokens = tokens[:tokens.index(tokenizer.eos_token_id)]
        outputs.append(tokenizer.decode(tokens, skip_special_tokens=True).strip())
    return outputs


def test_registered_names():
    for name in ("memory", "rmt", "rmt_r", "armt"):
        assert ANSWERERS[name].startswith("babilab.models.memory:")


@pytest.mark.parametrize("arch", ["rmt", "rmt_r", "armt"])
def test_round_trip_answers_equal_the_saved_model(arch, checkpoints, tokenizer):
    path, model = checkpoints[arch]
    reqs = requests(5)
    answerer = load_answerer(f"{arch}:{path}", dtype="float32", max_new_tokens=6, batch_size=2)
    answers = answerer.answer(reqs, PromptConfig())
    assert len(answers) == len(reqs)
    assert [a.output for a in answers] == reference_outputs(model, tokenizer, reqs, 6)
    assert len({a.output for a in answers}) > 1  # the outputs do depend on the input


def test_order_batching_and_long_inputs(checkpoints, tokenizer):
    path, _ = checkpoints["rmt"]
    reqs = requests(7)
    one = load_answerer(f"rmt:{path}", dtype="float32", max_new_tokens=5, batch_size=1)
    many = load_answerer(f"memory:{path}", dtype="float32", max_new_tokens=5, batch_size=3)
    forward = one.answer(reqs, PromptConfig())
    backward = many.answer(reqs[::-1], PromptConfig())
    assert [a.output for a in forward] == [a.output for a in backward][::-1]
    assert [a.prompt_tokens for a in forward] == [a.prompt_tokens for a in backward][::-1]
    assert [a.extra for a in forward] == [a.extra for a in backward][::-1]
    for r, a in zip(reqs, forward, strict=True):
        n_context = len(tokenizer(r.context, add_special_tokens=False)["input_ids"])
        n_question = len(tokenizer(question_text(r.question), add_special_tokens=False)["input_ids"])
        assert a.prompt_tokens == n_context + n_question
        shares = n_context and (n_context - 1) % SEGMENT + 1 + n_question <= SEGMENT
        assert a.extra["segments"] == -(-n_context // SEGMENT) + (not shares)
        assert not a.over_window and a.error is None
    assert max(a.prompt_tokens for a in forward) > 10 * WINDOW  # far past the backbone's window


def test_question_that_cannot_fit_is_flagged(checkpoints):
    path, _ = checkpoints["rmt"]
    answerer = load_answerer(f"rmt:{path}", dtype="float32", max_new_tokens=5)
    long_question = Request("qa1/x/9", "qa1", "Mary went to the garden.", "Where is Mary? " * 20)
    ok = requests(1)[0]
    over, fine = answerer.answer([long_question, ok], PromptConfig())
    assert over.over_window and over.output == "" and over.prompt_tokens > SEGMENT
    assert not fine.over_window


def test_an_output_from_a_state_that_overflowed_is_an_error(tokenizer, tmp_path):
    model = tiny_memory_model("rmt", tiny_backbone(tokenizer))
    with torch.no_grad():
        model.memory.fill_(float("inf"))  # every read starts from it, as from an overflowed state
    path = save_checkpoint(model, tokenizer, tmp_path / "rmt", save_backbone=True)
    answerer = load_answerer(f"rmt:{path}", dtype="float32", max_new_tokens=3, batch_size=2)
    answers = answerer.answer(requests(3), PromptConfig())
    assert len(answers) == 3
    for a in answers:
        assert a.output == "" and "not finite (inf or NaN)" in a.error
        assert f"overflowed reading these {a.extra['segments']} segments" in a.error


def test_window_counts_the_context_piece_that_shares_the_question(checkpoints, tokenizer):
    path, _ = checkpoints["rmt"]
    probe = load_answerer(f"rmt:{path}", dtype="float32")
    question = "Where is Mary?"
    n_question = len(tokenizer(question_text(question), add_special_tokens=False)["input_ids"])
    memory_rows = probe.model.tokens_per_pass - SEGMENT
    # the new tokens just fit after the question alone, not after a shared context piece
    answerer = load_answerer(f"rmt:{path}", dtype="float32",
                             max_new_tokens=WINDOW - memory_rows - n_question)
    words = " ".join(SENTENCES[:4] * 4).split()
    by_rest = {}  # context length mod SEGMENT -> a context with it
    for k in range(1, len(words)):
        text = " ".join(words[:k])
        n = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        by_rest.setdefault(n % SEGMENT, (text, n))
    (full, n_full), (shared, n_shared) = by_rest[0], by_rest[min(set(by_rest) - {0})]
    assert n_full >= SEGMENT and (n_shared % SEGMENT) + n_question <= SEGMENT
    alone, together = answerer.answer([Request("qa1/a/0", "qa1", full, question),
                                       Request("qa1/b/0", "qa1", shared, question)], PromptConfig())
    assert not alone.over_window and alone.extra["segments"] == n_full // SEGMENT + 1
    assert together.over_window and together.output == ""
    assert together.prompt_tokens == n_shared + n_question


def test_fingerprint_hashes_content_not_paths(checkpoints, tokenizer, tmp_path):
    path, _ = checkpoints["armt"]
    first = load_answerer(f"armt:{path}", dtype="float32")
    assert load_answerer(f"memory:{path}", dtype="float32", batch_size=1).fingerprint == first.fingerprint
    moved = shutil.copytree(path, tmp_path / "elsewhere")
    assert load_answerer(f"armt:{moved}", dtype="float32").fingerprint == first.fingerprint
    assert load_answerer(f"armt:{path}", dtype="float32", max_new_tokens=7).fingerprint != first.fingerprint
    assert load_answerer(f"armt:{path}", dtype="bfloat16").fingerprint != first.fingerprint
    # other memory weights, same backbone and config: another fingerprint
    other = tiny_memory_model("armt", tiny_backbone(tokenizer), seed=2)
    save_checkpoint(other, tokenizer, tmp_path / "other", save_backbone=True)
    before = load_answerer(f"armt:{tmp_path / 'other'}", dtype="float32").fingerprint
    assert before != first.fingerprint
    # the same memory weights around another backbone: another fingerprint
    with torch.no_grad():
        other.backbone.lm_head.weight.mul_(2)
    save_checkpoint(other, tokenizer, tmp_path / "other", save_backbone=True)
    assert load_answerer(f"armt:{tmp_path / 'other'}", dtype="float32").fingerprint != before


def test_wrong_architecture_and_bad_checkpoints(checkpoints, tokenizer, tmp_path):
    path, _ = checkpoints["rmt_r"]
    with pytest.raises(BabilabError, match="holds a 'rmt_r' checkpoint, not 'armt'"):
        load_answerer(f"armt:{path}")
    with pytest.raises(BabilabError, match="no such checkpoint folder"):
        load_answerer(f"rmt:{tmp_path / 'missing'}")
    with pytest.raises(BabilabError, match="not a saved babilab memory model"):
        load_answerer(f"memory:{tmp_path}")
    with pytest.raises(BabilabError, match="checkpoint folder"):
        load_answerer("rmt:")
    with pytest.raises(BabilabError, match="does not apply"):
        load_answerer(f"rmt:{path}", truncate="left")
    with pytest.raises(BabilabError, match="bad device"):
        load_answerer(f"rmt:{path}", device="abacus")


def test_checkpoint_without_backbone_needs_one(tokenizer, tmp_path):
    backbone = tiny_backbone(tokenizer)
    model = tiny_memory_model("rmt", backbone)
    save_checkpoint(model, tokenizer, tmp_path / "ckpt")  # memory weights + config + tokenizer
    with pytest.raises(BabilabError, match="saved without its backbone"):
        load_answerer(f"rmt:{tmp_path / 'ckpt'}")
    backbone.save_pretrained(tmp_path / "backbone")
    answerer = load_answerer(f"rmt:{tmp_path / 'ckpt'}", backbone=str(tmp_path / "backbone"),
                             dtype="float32", max_new_tokens=4)
    reqs = requests(3)
    assert [a.output for a in answerer.answer(reqs, PromptConfig())] == \
        reference_outputs(model, tokenizer, reqs, 4)
    wrong = LlamaForCausalLM(LlamaConfig(num_hidden_layers=1, hidden_size=32, intermediate_size=64,
                                         num_attention_heads=4, vocab_size=len(tokenizer)))
    wrong.save_pretrained(tmp_path / "wrong")
    with pytest.raises(BabilabError, match="does not match the checkpoint"):
        load_answerer(f"rmt:{tmp_path / 'ckpt'}", backbone=str(tmp_path / "wrong"))


def test_eval_scores_a_memory_model_like_any_other(checkpoints, small_suite, tmp_path):
    path, _ = checkpoints["rmt"]
    summary = evaluate(small_suite, f"rmt:{path}", tmp_path / "run", batch_size=4,
                       tasks=["qa1"], dtype="float32", max_new_tokens=4)
    assert (summary.new, summary.failed) == (10, 0)
    again = evaluate(small_suite, f"memory:{path}", tmp_path / "run", tasks=["qa1"],
                     dtype="float32", max_new_tokens=4)
    assert (again.new, again.skipped) == (0, 10)  # same checkpoint, same fingerprint: all stored


class Killed(Exception):
    """Stands for the process dying part way through a read."""


def test_on_segment_reports_each_segment_written_to_memory(checkpoints):
    path, _ = checkpoints["rmt"]
    answerer = load_answerer(f"rmt:{path}", dtype="float32", max_new_tokens=4)
    reports = []
    answerer.on_segment = lambda *report: reports.append(report)
    [answer] = answerer.answer([requests(3)[2]], PromptConfig())
    total = answer.extra["segments"]
    # every segment but the last, which holds the question and is decoded from
    assert total > 10 and reports == [(0, k, total) for k in range(1, total)]


def count_starts(monkeypatch, kill_after: int | None = None) -> list[int]:
    """Record where each read starts; optionally die after `kill_after` steps."""
    starts = []

    def stream(*args, **kwargs):
        starts.append(kwargs.get("start", 0))
        for i, step in enumerate(stream_segments(*args, **kwargs)):
            if i == kill_after:
                raise Killed
            yield step

    monkeypatch.setattr(memory_answerer, "stream_segments", stream)
    return starts


@pytest.mark.parametrize("arch", ["rmt", "rmt_r", "armt"])
def test_a_read_killed_part_way_continues_from_its_last_save(arch, checkpoints, tmp_path,
                                                             monkeypatch, capsys):
    path, _ = checkpoints[arch]
    reqs = [requests(3)[2], requests(5)[4]]  # 15 and 6 segments

    def answerer():  # a fresh one each time, as after a restart
        a = load_answerer(f"{arch}:{path}", dtype="float32", max_new_tokens=6, batch_size=2,
                          save_every_s=0)
        a.resume_dir = tmp_path / "partial"
        return a

    whole = load_answerer(f"{arch}:{path}", dtype="float32", max_new_tokens=6,
                          batch_size=2).answer(reqs, PromptConfig())
    count_starts(monkeypatch, kill_after=9)
    with pytest.raises(Killed):
        answerer().answer(reqs, PromptConfig())
    assert len(list((tmp_path / "partial").iterdir())) == 1
    starts = count_starts(monkeypatch)
    capsys.readouterr()
    resumed = answerer().answer(reqs, PromptConfig())
    assert "continuing a saved read after segment 8" in capsys.readouterr().err
    # 9 steps were taken before the kill and 8 written (the next one is read ahead): the
    # restart reads from the 9th on, and answers as if nothing had happened
    assert starts == [8]
    assert [a.output for a in resumed] == [a.output for a in whole]
    assert [a.extra["resumed_at"] for a in resumed] == [8, 8]
    assert not list((tmp_path / "partial").iterdir())  # the save is gone once answered



@pytest.mark.parametrize("arch", ["rmt", "rmt_r", "armt"])
def test_an_interrupted_read_is_saved_at_once(arch, checkpoints, tmp_path, monkeypatch, capsys):
    path, _ = checkpoints[arch]
    reqs = [requests(3)[2], requests(5)[4]]

    def answerer():  # no timed save in a read this short: only the interrupt saves
        a = load_answerer(f"{arch}:{path}", dtype="float32", max_new_tokens=6, batch_size=2,
                          save_every_s=3600)
        a.resume_dir = tmp_path
        return a

    whole = answerer().answer(reqs, PromptConfig())
    assert not list(tmp_path.iterdir())

    def stream(*args, **kwargs):  # Ctrl-C while the 10th step is being read ahead
        for i, step in enumerate(stream_segments(*args, **kwargs)):
            if i == 9:
                raise KeyboardInterrupt
            yield step

    monkeypatch.setattr(memory_answerer, "stream_segments", stream)
    with pytest.raises(KeyboardInterrupt):
        answerer().answer(reqs, PromptConfig())
    assert "saved the read after segment 8" in capsys.readouterr().err
    starts = count_starts(monkeypatch)
    assert [a.output for a in answerer().answer(reqs, PromptConfig())] == [a.output for a in whole]
    assert starts == [8] and not list(tmp_path.iterdir())

def test_a_damaged_or_foreign_save_is_ignored(checkpoints, tmp_path, monkeypatch, capsys):
    path, _ = checkpoints["rmt"]
    reqs = [requests(3)[2]]
    answerer = load_answerer(f"rmt:{path}", dtype="float32", max_new_tokens=6, save_every_s=0)
    answerer.resume_dir = tmp_path
    whole = load_answerer(f"rmt:{path}", dtype="float32", max_new_tokens=6).answer(reqs, PromptConfig())
    count_starts(monkeypatch, kill_after=5)
    with pytest.raises(Killed):
        answerer.answer(reqs, PromptConfig())
    (saved,) = tmp_path.iterdir()
    saved.write_bytes(saved.read_bytes()[:100])  # cut short by hand (saves are atomic)
    starts = count_starts(monkeypatch)
    assert [a.output for a in answerer.answer(reqs, PromptConfig())] == [a.output for a in whole]
    assert starts == [0] and "ignoring the saved read" in capsys.readouterr().err
    other = [Request("qa1/x/8", "qa1", reqs[0].context + " Mary went to the garden.", "Where is Mary?")]
    count_starts(monkeypatch, kill_after=5)
    with pytest.raises(Killed):
        answerer.answer(reqs, PromptConfig())
    starts = count_starts(monkeypatch)
    answerer.answer(other, PromptConfig())  # other tokens: the save of `reqs` is not theirs
    assert starts == [0] and len(list(tmp_path.iterdir())) == 1


def test_eval_killed_mid_read_continues_from_the_run_folder(checkpoints, small_suite, tmp_path,
                                                            monkeypatch):
    path, _ = checkpoints["rmt"]
    options = {"tasks": ["qa1"], "dtype": "float32", "max_new_tokens": 4, "save_every_s": 0}
    evaluate(small_suite, f"rmt:{path}", tmp_path / "whole", **options)
    count_starts(monkeypatch, kill_after=3)
    with pytest.raises(Killed):
        evaluate(small_suite, f"rmt:{path}", tmp_path / "run", **options)
    assert len(list((tmp_path / "run" / "partial").iterdir())) == 1
    starts = count_starts(monkeypatch)
    summary = evaluate(small_suite, f"rmt:{path}", tmp_path / "run", **options)
    assert summary.new == 10 and starts[0] == 2  # the first batch continues after 2 segments

    def outputs(run):
        with RunStore(run) as store:
            return sorted((p.sample_id, p.output) for p in store.predictions())

    assert outputs(tmp_path / "run") == outputs(tmp_path / "whole")
    assert not list((tmp_path / "run" / "partial").iterdir())




def test_sigterm_stops_babilab_eval_like_ctrl_c_and_the_same_command_continues(
        checkpoints, small_suite, tmp_path, monkeypatch):
    path, _ = checkpoints["rmt"]
    args = ["eval", "--suite", str(small_suite.path), "--model", f"rmt:{path}", "--run",
            str(tmp_path / "run"), "--tasks", "qa1", "--dtype", "float32", "--max-new-tokens", "4"]
    starts = []

    def stream(*a, **kw):  # the first read is sent SIGTERM at its 4th step
        starts.append(kw.get("start", 0))
        for i, step in enumerate(stream_segments(*a, **kw)):
            if i == 3 and len(starts) == 1:
                os.kill(os.getpid(), signal.SIGTERM)
            yield step

    monkeypatch.setattr(memory_answerer, "stream_segments", stream)
    assert main(args) == 130  # "interrupted", with the read saved (no timed save came yet)
    assert len(list((tmp_path / "run" / "partial").iterdir())) == 1
    assert main(args) == 0
    assert starts[1] == 2  # continued after the 2 segments written before the signal
    evaluate(small_suite, f"rmt:{path}", tmp_path / "whole", tasks=["qa1"], dtype="float32",
             max_new_tokens=4)

    def outputs(run):
        with RunStore(run) as store:
            return sorted((p.sample_id, p.output) for p in store.predictions())

    assert outputs(tmp_path / "run") == outputs(tmp_path / "whole")

def test_eval_points_out_saves_no_run_will_use(checkpoints, small_suite, tmp_path, monkeypatch,
                                               caplog):
    options = {"tasks": ["qa1"], "dtype": "float32", "max_new_tokens": 4, "save_every_s": 0}
    count_starts(monkeypatch, kill_after=3)
    with pytest.raises(Killed):
        evaluate(small_suite, f"rmt:{checkpoints['rmt'][0]}", tmp_path / "run", **options)
    count_starts(monkeypatch)
    with caplog.at_level("WARNING", logger="babilab.runs.evaluate"):
        evaluate(small_suite, f"armt:{checkpoints['armt'][0]}", tmp_path / "run", **options)
    assert "keeps 1 saved read (" in caplog.text  # the RMT read, which ARMT's run cannot use
    caplog.clear()
    with caplog.at_level("WARNING", logger="babilab.runs.evaluate"):
        evaluate(small_suite, f"rmt:{checkpoints['rmt'][0]}", tmp_path / "run", **options)
    assert "saved read" not in caplog.text  # RMT continued its read and then removed it

def test_encode_long_equals_one_encode(tokenizer):
    text = "  ".join(SENTENCES) + "\n" + " Mary  went\n\nto the  garden. " * 30
    whole = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert memory_answerer._chunks_join_exactly(tokenizer)  # byte-level: the text is really cut
    for chunk in (7, 40, 1 << 20):
        assert encode_long(tokenizer, text, chunk_chars=chunk).tolist() == whole
    assert encode_long(tokenizer, "").tolist() == []


def test_encode_long_is_exact_for_a_tokenizer_that_prepends_a_space_marker():
    backend = Tokenizer(models.BPE(unk_token="<unk>"))  # Llama 2's normalizer: "▁" before every input
    backend.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    trainer = trainers.BpeTrainer(vocab_size=200, special_tokens=["<unk>"], show_progress=False)
    backend.train_from_iterator(SENTENCES * 10, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")
    text = " ".join(SENTENCES) * 3
    whole = tokenizer(text, add_special_tokens=False)["input_ids"]
    pieces = [text[a:b] for a, b in chunk_bounds(text, 40)]
    assert sum(tokenizer(pieces, add_special_tokens=False)["input_ids"], []) != whole  # naive cuts
    assert encode_long(tokenizer, text, chunk_chars=40).tolist() == whole


def test_stream_segments_ends_the_last_segment_with_the_whole_question():
    contexts = [np.arange(1, 38), np.zeros(0, dtype=np.int64), np.arange(50, 55), np.arange(60, 92)]
    questions = [[7, 8], [9], [4, 5, 6], [3]]
    steps = list(stream_segments(contexts, questions, SEGMENT))
    last = [r[m.bool()].tolist() for r, m in zip(steps[-1].input_ids, steps[-1].attention_mask,
                                                 strict=True)]
    # 37 = 16 + 16 + 5 tokens: the last 5 share the question's segment; 32 fill two segments,
    # so that question is alone
    assert last == [[33, 34, 35, 36, 37, 7, 8], [9], [50, 51, 52, 53, 54, 4, 5, 6], [3]]
    for i, (context, question) in enumerate(zip(contexts, questions, strict=True)):
        row = torch.cat([s.input_ids[i][s.attention_mask[i].bool()] for s in steps])
        assert row.tolist() == [*context.tolist(), *question]  # every token once, in order
        assert sum(bool(s.active[i]) for s in steps) == n_segments(len(context), len(question),
                                                                   SEGMENT)
    assert [s.active.tolist() for s in steps] == [  # empty and short contexts start late
        [True, False, False, True], [True, False, False, True], [True, True, True, True]]
    padded = list(stream_segments(contexts, questions, SEGMENT, pad_to=4))
    assert [s.input_ids.shape[1] for s in padded] == [16, 16, 8]  # 8 -> 8
    for a, b in zip(steps, padded, strict=True):  # the same tokens, only more left padding
        assert [r[m.bool()].tolist() for r, m in zip(a.input_ids, a.attention_mask, strict=True)] == \
            [r[m.bool()].tolist() for r, m in zip(b.input_ids, b.attention_mask, strict=True)]
