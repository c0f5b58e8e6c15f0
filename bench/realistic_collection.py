"""A realistic large ColBERT collection without a network: real sentences recombined.

Every sentence of the data under ``../shared/data`` (SciFact abstracts, SQuAD paragraphs,
BioASQ snippets, NQ-open questions) is encoded once by a ColBERT model trained with
``odqa train colbert`` (dim 128); a passage is a run of random sentences, 30 to 150 tokens,
whose token vectors are those of its sentences (each encoded in its own context), framed by
the first sentence's [CLS] [D] and the last one's [SEP]. SciFact's 5,183 documents are
planted whole, spread evenly through the collection, so nDCG@10 of SciFact's test queries
says what a growing index does to relevance. Sentences of the documents those queries judge
are left out of the pool (a recombined passage never carries a judged document's sentence).

What is cached under ``bench/results/cache/realistic/`` (ignored by git; SOURCE.md there):
the model (``colbert-dim128``) and ``vectors.pt``: sentence and document token vectors
(float16), their lengths, the test queries' vectors and mask, the planted documents' ids.

    odqa train colbert ../shared/data/beir-scifact --qrels train \\
        --out bench/results/cache/realistic/colbert-dim128 --dim 128 --epochs 3 \\
        --lr 4e-5 --head-lr 4e-4
    python bench/realistic_collection.py      # once: split, encode and cache (minutes)
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import time

import numpy as np
import torch

from common import DATA, RESULTS
from odqa.corpus import read_qrels, read_queries
from odqa.evaluate.ir import evaluate_run
from odqa.index.late import training_pids

CACHE = RESULTS / "cache" / "realistic"
MODEL = CACHE / "colbert-dim128"
VECTORS = CACHE / "vectors.pt"
SCIFACT = DATA / "beir-scifact"
MIN_TOKENS, MAX_TOKENS = 30, 150  # a recombined passage's length, in body tokens
FRAME = 2  # [CLS] [D] open every encoded text; [SEP] closes it
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"(\[])")


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` with at least 20 characters (a plain end-punctuation split)."""
    return [part.strip() for part in SENTENCE_END.split(text) if len(part.strip()) >= 20]


def scifact_documents() -> list[dict]:
    with gzip.open(SCIFACT / "corpus.jsonl.gz", "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def sentence_pool(judged: set[str]) -> list[str]:
    """Every sentence of the shared data, but those of SciFact documents that are judged."""
    pool = []
    for doc in scifact_documents():
        if doc["_id"] not in judged:
            pool += split_sentences(doc["text"])
    squad = json.loads((DATA / "squad-v1.1" / "dev-v1.1.json").read_text(encoding="utf-8"))
    for article in squad["data"]:
        for paragraph in article["paragraphs"]:
            pool += split_sentences(paragraph["context"])
    for batch in sorted((DATA / "bioasq-12b-golden").glob("*.json")):
        for question in json.loads(batch.read_text(encoding="utf-8"))["questions"]:
            pool += [
                s for snippet in question["snippets"] for s in split_sentences(snippet["text"])
            ]
            pool += split_sentences(question["body"])
    for path in sorted((DATA / "nq-open").glob("*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            pool += [json.loads(line)["question"] + "?" for line in handle]
    return sorted(set(pool))


def encode_cache() -> None:
    """Split, encode and cache everything a collection of any size is made of."""
    from odqa.models.colbert import ColBERTEncoder

    qrels = read_qrels(SCIFACT / "qrels" / "test.tsv")
    judged = {doc for docs in qrels.values() for doc in docs}
    queries = {query.id: query.text for query in read_queries(SCIFACT)}
    test = sorted(qid for qid in qrels if qid in queries)
    documents = scifact_documents()
    pool = sentence_pool(judged)
    encoder = ColBERTEncoder(MODEL)
    started = time.perf_counter()
    sentences, sentence_lens = encoder.encode_documents(pool, show_progress=True)
    texts = [f"{doc['title']} {doc['text']}".strip() for doc in documents]
    planted, planted_lens = encoder.encode_documents(texts, show_progress=True)
    Q, qmask = encoder.encode_queries([queries[qid] for qid in test])
    seconds = time.perf_counter() - started
    torch.save(
        {
            "sentences": sentences.half(),
            "sentence_lens": sentence_lens,
            "planted": planted.half(),
            "planted_lens": planted_lens,
            "planted_ids": [doc["_id"] for doc in documents],
            "queries": Q,
            "qmask": qmask,
            "query_ids": test,
            "qrels": {qid: qrels[qid] for qid in test},
            "model": str(MODEL.name),
        },
        VECTORS,
    )
    tokens = int(sentence_lens.sum() + planted_lens.sum())
    print(
        json.dumps(
            {
                "sentences": len(pool),
                "sentence_tokens": int(sentence_lens.sum()),
                "planted": len(documents),
                "planted_tokens": int(planted_lens.sum()),
                "queries": len(test),
                "encode_s": round(seconds, 1),
                "tokens_per_s": round(tokens / seconds),
            }
        )
    )


class RealisticCollection:
    """Seeded passages of ``size`` recombined sentences with SciFact's documents planted.

    Passage ``pid``'s content depends only on the seed and its chunk of :data:`CHUNK`
    passages, so any passage range can be made again without the ones before it.
    """

    CHUNK = 2000

    def __init__(self, size: int, seed: int = 0) -> None:
        cached = torch.load(VECTORS)
        self.size, self.seed = size, seed
        self.sentences = cached["sentences"]
        lens = cached["sentence_lens"].numpy()
        self.sentence_starts = np.cumsum(lens) - lens
        self.sentence_lens = lens
        self.planted = cached["planted"]
        planted_lens = cached["planted_lens"].numpy()
        self.planted_starts = np.cumsum(planted_lens) - planted_lens
        self.planted_lens = planted_lens
        self.planted_ids: list[str] = cached["planted_ids"]
        count = len(self.planted_ids)
        if size < count:
            raise SystemExit(f"a collection holds the {count} SciFact documents: size >= {count}")
        self.planted_pids = (np.arange(count) * size) // count
        self.Q, self.qmask = cached["queries"], cached["qmask"]
        self.query_ids: list[str] = cached["query_ids"]
        self.qrels: dict[str, dict[str, int]] = cached["qrels"]

    def doc_id(self, pid: int) -> str:
        """The SciFact id of a planted pid, or '' for a recombined passage."""
        at = np.searchsorted(self.planted_pids, pid)
        if at < len(self.planted_pids) and self.planted_pids[at] == pid:
            return self.planted_ids[at]
        return ""

    def compose(self, first: int, count: int) -> list[tuple[str, np.ndarray]]:
        """What passages ``first`` .. ``first+count`` are: ("planted", [doc]) or
        ("sentences", ids), one chunk's random stream at a time."""
        out = []
        for chunk in range(first // self.CHUNK, (first + count - 1) // self.CHUNK + 1):
            out += self._chunk(chunk)
        skip = first - (first // self.CHUNK) * self.CHUNK
        return out[skip : skip + count]

    def _chunk(self, chunk: int) -> list[tuple[str, np.ndarray]]:
        rng = np.random.default_rng([self.seed, chunk])
        begin, end = chunk * self.CHUNK, min(self.size, (chunk + 1) * self.CHUNK)
        first_planted = np.searchsorted(self.planted_pids, begin)
        last_planted = np.searchsorted(self.planted_pids, end)
        planted = dict(
            zip(
                self.planted_pids[first_planted:last_planted].tolist(),
                range(first_planted, last_planted),
                strict=True,
            )
        )
        targets = rng.integers(MIN_TOKENS, MAX_TOKENS + 1, size=end - begin)
        picks = rng.integers(len(self.sentence_lens), size=(end - begin) * 12)
        bodies = self.sentence_lens[picks] - FRAME - 1
        out, used = [], 0
        for offset, pid in enumerate(range(begin, end)):
            if pid in planted:
                out.append(("planted", np.array([planted[pid]])))
                continue
            total, ids = 0, []
            while total < targets[offset] and used < len(picks):
                if ids and total + bodies[used] > MAX_TOKENS:
                    break
                ids.append(picks[used])
                total += bodies[used]
                used += 1
            out.append(("sentences", np.array(ids)))
        return out

    def vectors(self, parts: list[tuple[str, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token vectors float32 (tokens, dim) and doclens of composed passages."""
        rows, lens = [], []
        for kind, ids in parts:
            if kind == "planted":
                start, length = self.planted_starts[ids[0]], self.planted_lens[ids[0]]
                rows.append(np.arange(start, start + length))
                lens.append(length)
                continue
            starts, lengths = self.sentence_starts[ids], self.sentence_lens[ids]
            pieces = [np.arange(starts[0], starts[0] + FRAME)]
            pieces += [
                np.arange(s + FRAME, s + n - 1) for s, n in zip(starts, lengths, strict=True)
            ]
            pieces.append(np.array([starts[-1] + lengths[-1] - 1]))
            row = np.concatenate(pieces)
            rows.append(row)
            lens.append(len(row))
        planted_mask = np.array([kind == "planted" for kind, _ in parts])
        out = torch.empty(int(sum(lens)), self.sentences.shape[1], dtype=torch.float16)
        at = 0
        for row, is_planted in zip(rows, planted_mask, strict=True):
            source = self.planted if is_planted else self.sentences
            out[at : at + len(row)] = source[torch.from_numpy(row)]
            at += len(row)
        return out.float(), torch.tensor(lens, dtype=torch.int64)

    def passages(self, first: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.vectors(self.compose(first, count))

    def sample(self, pids: np.ndarray) -> torch.Tensor:
        """Float16 tokens of the sorted passages ``pids`` (the codec's training sample)."""
        parts = []
        for chunk in np.unique(pids // self.CHUNK):
            composed = self._chunk(int(chunk))
            within = pids[(pids // self.CHUNK) == chunk] - chunk * self.CHUNK
            parts.append(self.vectors([composed[i] for i in within])[0].half())
        return torch.cat(parts)

    def ndcg10(self, pids: np.ndarray, scores: np.ndarray) -> float:
        """Mean nDCG@10 (``odqa.evaluate``) over the test queries of search results ``pids``
        and their ``scores`` (nq, >=10); a recombined passage is an unjudged document."""
        run = {
            qid: {
                self.doc_id(int(pid)) or f"passage-{pid}": float(score)
                for pid, score in zip(row, row_scores, strict=True)
                if pid >= 0
            }
            for qid, row, row_scores in zip(self.query_ids, pids, scores, strict=True)
        }
        return float(evaluate_run(run, self.qrels)["ndcg@10"])


class RealisticSource(RealisticCollection):
    """The collection as ``bench/scale_colbert.py`` reads a source."""

    def __init__(self, size: int, seed: int = 0) -> None:
        super().__init__(size, seed)
        self.passages_count = size
        self.mean_doclen = float(self.passages(0, min(size, self.CHUNK))[1].float().mean())

    def training_sample(self) -> torch.Tensor:
        """The passages a build trains its codec on (:func:`training_pids`)."""
        return self.sample(training_pids(self.size, self.seed))

    def chunk(self, stream: int, first: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.passages(first, count)

    def probe(self, count: int) -> torch.Tensor:
        """``count`` tokens of random passages (not a sample of the build's order)."""
        rng = np.random.default_rng([self.seed, 1 << 31])
        pids = np.sort(rng.choice(self.size, size=max(1, count // 80), replace=False))
        return self.sample(pids)[:count].float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    encode_cache()


if __name__ == "__main__":
    main()
