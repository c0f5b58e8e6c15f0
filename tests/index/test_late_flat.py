"""PLAID's stages against their definitions on padded, decompressed passages."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest
import torch

from odqa.index.late import LateIndex, build_late_index, flat, maxsim, plaid_defaults, search
from odqa.index.late.synthetic import make_collection, make_queries
from odqa.index.settings import PlaidSettings


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> LateIndex:
    embeddings, doclens, _ = make_collection(200, 32, min_len=5, max_len=80, seed=3)
    folder = tmp_path_factory.mktemp("flat") / "index"
    with build_late_index(folder, nbits=2) as writer:
        writer.train(embeddings)
        writer.add(embeddings, doclens)
    return LateIndex(folder)


@pytest.fixture(scope="module")
def queries(index: LateIndex) -> tuple[torch.Tensor, torch.Tensor]:
    embeddings, doclens, _ = make_collection(200, 32, min_len=5, max_len=80, seed=3)
    Q, qmask, _ = make_queries(embeddings, doclens, 6, length=16, seed=4)
    return index._queries(Q, qmask)


def reference(index: LateIndex, Q, qmask, pids, table=None, survives=None) -> torch.Tensor:
    """MaxSim per (query i, pids[i]) on padded passages: exact, or each token's centroid row
    of ``table`` (nq, C, L), a token whose centroid does not survive scoring 0."""
    out = []
    for q, pid in enumerate(pids):
        rows, mask = index.store.token_rows(np.array([pid]))
        codes = torch.from_numpy(np.asarray(index.store.codes[rows[0]], dtype=np.int64))
        if table is None:
            D, _ = index.store.decompressed(np.array([pid]))
            sim = D[0] @ Q[q].T
        else:
            sim = table[q][codes]
        if survives is not None:
            sim = torch.where(survives[q][codes][:, None], sim, torch.zeros_like(sim))
        sim = sim.masked_fill(~torch.from_numpy(mask[0])[:, None], float("-inf"))
        out.append(torch.where(qmask[q], sim.amax(dim=0), 0).sum())
    return torch.stack(out)


def pairs(index: LateIndex, nq: int) -> tuple[torch.Tensor, np.ndarray]:
    rng = np.random.default_rng(5)
    pids = np.concatenate([np.sort(rng.choice(index.num_passages, 40, replace=False))] * nq)
    return torch.arange(nq).repeat_interleave(40), pids


@pytest.mark.parametrize("threads", [1, 2])
def test_centroid_and_pruned_scores_match_their_definition(
    index: LateIndex, queries, monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    Q, qmask = queries
    monkeypatch.setattr(flat, "CODE_BLOCK", 300)  # several blocks, run on the thread pool
    monkeypatch.setattr(flat, "TOKEN_BLOCK", 64)
    torch.set_num_threads(threads)
    table = index.codec.centroid_scores(Q).masked_fill(~qmask[..., None], 0).transpose(1, 2)
    table = table.contiguous()
    survives = table.amax(dim=2) >= 0.5
    query, pids = pairs(index, len(Q))
    scorer = flat.centroid_scorer(table)
    full = flat.pair_scores(index.store, scorer, query, pids)
    pruned = flat.pair_scores(index.store, scorer, query, pids, survives)
    assert survives.float().mean() < 0.5  # pruning leaves tokens out
    expected_full = reference(index, Q[query], qmask[query], pids, table[query])
    expected = reference(index, Q[query], qmask[query], pids, table[query], survives[query])
    torch.testing.assert_close(full, expected_full, rtol=0, atol=1e-5)
    torch.testing.assert_close(pruned, expected, rtol=0, atol=1e-5)
    assert not torch.equal(pruned, full)


def test_exact_scores_of_pairs_and_of_every_passage_match_padded_maxsim(
    index: LateIndex, queries, monkeypatch: pytest.MonkeyPatch
) -> None:
    Q, qmask = queries
    monkeypatch.setattr(flat, "TOKEN_BLOCK", 64)
    query, pids = pairs(index, len(Q))
    scorer = flat.exact_scorer(index.store, Q, qmask)
    exact = flat.pair_scores(index.store, scorer, query, pids)
    torch.testing.assert_close(
        exact, reference(index, Q[query], qmask[query], pids), atol=1e-5, rtol=0
    )
    table = index.codec.centroid_scores(Q).amax(dim=1)
    survives = table >= 0.4
    partial = flat.pair_scores(index.store, scorer, query, pids, survives)
    assert (partial <= exact + 1e-5).all()  # tokens left out score 0, never more
    expected = reference(index, Q[query], qmask[query], pids, survives=survives[query])
    torch.testing.assert_close(partial, expected, atol=1e-5, rtol=0)
    everything = np.arange(index.num_passages)
    D, dmask = index.store.decompressed(everything)
    whole = torch.cat(
        [scores for _, _, scores in flat.exact_scores(index.store, Q, qmask, everything)], 1
    )
    torch.testing.assert_close(whole, maxsim(Q, qmask, D, dmask), atol=1e-5, rtol=0)


def test_candidate_votes_are_the_scores_of_the_tokens_whose_cells_list_them(
    index: LateIndex, queries
) -> None:
    Q, qmask = queries
    per_token = index.codec.centroid_scores(Q)
    query, pids, votes = index._candidates(per_token, qmask, 2)
    top = per_token.topk(2, dim=2)
    assert len(pids) > 100
    for q, pid, vote in list(zip(query, pids, votes, strict=True))[::37]:
        listed = set(index.store.codes[index.store.token_rows(np.array([pid]))[0][0]].tolist())
        expected = sum(
            float(score)
            for token in np.flatnonzero(qmask[q].numpy())
            for cell, score in zip(
                top.indices[q, token].tolist(), top.values[q, token], strict=True
            )
            if cell in listed
        )
        assert vote > 0 and vote == pytest.approx(expected, abs=1e-4)


def test_stage_two_scores_the_best_voted_candidates_only(
    index: LateIndex, queries, monkeypatch: pytest.MonkeyPatch
) -> None:
    Q, qmask = queries
    seen = []

    def recording(store, scorer, query, pids, survives=None):
        seen.append((query.numpy().copy(), pids.copy()))
        return flat.pair_scores(store, scorer, query, pids, survives)

    monkeypatch.setattr(search, "pair_scores", recording)
    raw = index.codec.from_index_space(Q)  # the fixture's queries are in the index's space
    found, _ = index.search(raw, qmask, 10, ncells=4, ndocs=3)  # 4 * max(ndocs, k) = 40
    assert (found >= 0).all()
    query, pids = seen[0]
    all_query, all_pids, votes = index._candidates(index.codec.centroid_scores(Q), qmask, 4)
    for q in range(len(Q)):
        assert np.bincount(all_query)[q] > 40 and (query == q).sum() == 40
        mine = all_query == q
        order = np.argsort(-votes[mine], kind="stable")
        assert set(pids[query == q]) <= set(all_pids[mine][order[:41]])
        assert len(set(pids[query == q]) & set(all_pids[mine][order[:40]])) >= 39


def test_ndocs_default_grows_with_the_index_and_settings_still_win() -> None:
    assert plaid_defaults(10) == (1, 0.5, 256) == plaid_defaults(10, 4096)
    sizes = [plaid_defaults(10, n)[2] for n in (10_000, 100_000, 1_000_000)]
    assert sizes == [400, 1265, 4000]
    assert plaid_defaults(100, 1_000_000) == (2, 0.45, 16000)
    assert PlaidSettings(ndocs=512).resolve(10, 1_000_000) == (1, 0.5, 512)
    assert PlaidSettings().resolve(10, 1_000_000) == (1, 0.5, 4000)


def test_a_forked_child_starts_its_own_thread_pool(
    index: LateIndex, queries, monkeypatch: pytest.MonkeyPatch
) -> None:
    Q, qmask = queries
    monkeypatch.setattr(flat, "CODE_BLOCK", 300)  # several blocks: the thread pool runs them
    torch.set_num_threads(2)
    index.search(index.codec.from_index_space(Q), qmask, 5, ndocs=4096)
    assert flat._pool.cache_info().currsize == 1
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=pools_into, args=(results,))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0 and results.get(timeout=5) == 0  # the parent's threads are gone


def pools_into(results) -> None:
    results.put(flat._pool.cache_info().currsize)
