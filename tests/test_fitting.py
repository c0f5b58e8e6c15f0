"""The readers' fine-tuning loop: length-grouped batches and token-capped micro-batches."""

from __future__ import annotations

import torch

from odqa.train.fitting import epoch_batches, fit, micro_batches


def test_grouped_batches_cover_every_item_once_with_similar_lengths() -> None:
    lengths = [int(length) for length in torch.randint(10, 400, (1000,)).tolist()]
    batches = epoch_batches(1000, 16, torch.Generator().manual_seed(0), lengths)
    assert sorted(item for batch in batches for item in batch) == list(range(1000))
    spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches]
    random = epoch_batches(1000, 16, torch.Generator().manual_seed(0))
    random_spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in random]
    assert sum(spread) < sum(random_spread) / 4


def test_grouped_batches_are_seeded() -> None:
    lengths = list(range(300))
    first = epoch_batches(300, 8, torch.Generator().manual_seed(3), lengths)
    again = epoch_batches(300, 8, torch.Generator().manual_seed(3), lengths)
    other = epoch_batches(300, 8, torch.Generator().manual_seed(4), lengths)
    assert first == again
    assert first != other


def test_micro_batches_stay_within_the_token_cap() -> None:
    lengths = [100, 300, 50, 384, 384, 20]
    runs = micro_batches(list(range(6)), lengths, 800)
    assert [item for run in runs for item in run] == list(range(6))
    assert all(len(run) * max(lengths[i] for i in run) <= 800 for run in runs)
    assert micro_batches([3], lengths, 100) == [[3]]  # one long item is never cut
    assert micro_batches([0, 1, 2], None, 10) == [[0, 1, 2]]


def test_micro_batches_give_the_whole_batch_gradient() -> None:
    """Training with a tight token cap matches training on whole batches."""
    features = torch.randn(40, 5)
    targets = torch.randn(40)

    def trained(max_tokens: int) -> torch.Tensor:
        torch.manual_seed(0)
        model = torch.nn.Linear(5, 1)

        def batch_loss(chosen: list[int]) -> torch.Tensor:
            return ((model(features[chosen]).squeeze(1) - targets[chosen]) ** 2).mean()

        fit(
            model, 40, batch_loss, epochs=2, batch_size=8, learning_rate=0.1, seed=0,
            device=torch.device("cpu"), precision="fp32", show_progress=False,
            description="test", lengths=[3] * 40, max_tokens=max_tokens,
        )  # fmt: skip
        return model.weight.detach().clone()

    torch.manual_seed(0)
    untrained = torch.nn.Linear(5, 1).weight.detach()
    assert torch.allclose(trained(1000), trained(6), atol=1e-6)
    assert not torch.allclose(trained(1000), untrained, atol=1e-3)
