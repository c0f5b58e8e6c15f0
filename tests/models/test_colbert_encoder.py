"""ColBERT encoder: each checkpoint layout against a by-hand reimplementation of its rules, and
odqa's own trained checkpoints saved, loaded and encoded to the same vectors."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import AutoTokenizer, BertConfig, BertModel

from helpers import TOKENIZER_FILES, copy_tokenizer
from odqa.errors import OdqaError
from odqa.models import embedded_model_path
from odqa.models.colbert import ColBERTEncoder
from odqa.train.checkpoints import start_colbert
from odqa.train.examples import TrainingExample
from odqa.train.retrievers import ColBERTScorer
from odqa.train.run import train_retriever
from odqa.train.trainer import TrainConfig

QUERIES = [
    "what causes scurvy?",
    "?!",
    "a very long question " * 8,
    "",
    "vitamin c",
]
DOCS = [
    "Scurvy is caused by a lack of vitamin C.",
    "...",
    "",
    "The ocean is deep, and blue; " * 6,
    "Kinases phosphorylate proteins.",
]
QUERY_MAXLEN, DOC_MAXLEN = 12, 20


def tiny_bert(vocab_size: int = 30522, seed: int = 0) -> BertModel:
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
    )
    return BertModel(config).eval()


def write_stanford(
    folder: Path, attend_to_mask_tokens: bool = False, weights: str = "model.safetensors"
) -> tuple[BertModel, torch.Tensor]:
    """A Stanford ColBERT folder: ``bert.``-prefixed weights, ``linear.weight`` and metadata."""
    folder.mkdir()
    bert = tiny_bert()
    linear = torch.randn(16, 64, generator=torch.Generator().manual_seed(1))
    state = {f"bert.{k}": v.contiguous() for k, v in bert.state_dict().items()}
    state["linear.weight"] = linear
    if weights == "pytorch_model.bin":
        torch.save(state, folder / weights)
    else:
        save_file(state, str(folder / weights))
    config = bert.config.to_dict() | {"architectures": ["HF_ColBERT"]}
    (folder / "config.json").write_text(json.dumps(config))
    meta = {
        "query_maxlen": QUERY_MAXLEN,
        "doc_maxlen": DOC_MAXLEN,
        "dim": 16,
        "mask_punctuation": True,
        "attend_to_mask_tokens": attend_to_mask_tokens,
        "query_token_id": "[unused0]",
        "doc_token_id": "[unused1]",
        "query_token": "[Q]",
        "doc_token": "[D]",
        "similarity": "cosine",
    }
    (folder / "artifact.metadata").write_text(json.dumps(meta))
    copy_tokenizer(folder)
    return bert, linear


def write_pylate(folder: Path) -> tuple[BertModel, list[torch.nn.Module]]:
    """A PyLate folder: prefixes added to the vocabulary; Dense modules Tanh then Identity."""
    folder.mkdir()
    tokenizer = AutoTokenizer.from_pretrained(str(embedded_model_path()))
    tokenizer.add_tokens(["[Q] ", "[D] "])
    tokenizer.save_pretrained(str(folder))
    bert = tiny_bert(vocab_size=len(tokenizer))
    bert.save_pretrained(folder)
    (folder / "sentence_bert_config.json").write_text(
        '{"max_seq_length": 19, "do_lower_case": false}'
    )
    torch.manual_seed(2)
    first, second = torch.nn.Linear(64, 24), torch.nn.Linear(24, 16, bias=False)
    for path, linear, activation in (
        ("1_Dense", first, "torch.nn.modules.activation.Tanh"),
        ("2_Dense", second, "torch.nn.modules.linear.Identity"),
    ):
        (folder / path).mkdir()
        config = {
            "in_features": linear.in_features,
            "out_features": linear.out_features,
            "bias": linear.bias is not None,
            "activation_function": activation,
            "use_residual": False,
        }
        (folder / path / "config.json").write_text(json.dumps(config))
        state = {f"linear.{k}": v.detach().clone() for k, v in linear.state_dict().items()}
        save_file(state, str(folder / path / "model.safetensors"))
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Dense", "type": "pylate.models.Dense.Dense"},
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "pylate.models.Dense.Dense"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    settings = {
        "query_prefix": "[Q] ",
        "document_prefix": "[D] ",
        "query_length": QUERY_MAXLEN,
        "document_length": DOC_MAXLEN,
        "attend_to_expansion_tokens": False,
        "skiplist_words": list(string.punctuation),
        "do_query_expansion": True,
        "similarity_fn_name": "MaxSim",
    }
    (folder / "config_sentence_transformers.json").write_text(json.dumps(settings))
    return bert, [torch.nn.Sequential(first, torch.nn.Tanh()), second]


# --- the reference rules, written out token by token ------------------------------------------


@torch.no_grad()
def forward(bert: BertModel, ids: list[int], attention: list[int], project) -> torch.Tensor:
    hidden = bert(
        input_ids=torch.tensor([ids]), attention_mask=torch.tensor([attention])
    ).last_hidden_state[0]
    return torch.nn.functional.normalize(project(hidden), dim=-1)


def colbert_query(tok, text: str, marker: int, attend_masks: bool) -> tuple[list[int], list[int]]:
    """[CLS] marker text [SEP], then [MASK] up to the query length."""
    pieces = tok(text, add_special_tokens=False)["input_ids"][: QUERY_MAXLEN - 3]
    ids = [tok.cls_token_id, marker, *pieces, tok.sep_token_id]
    pad = QUERY_MAXLEN - len(ids)
    return ids + [tok.mask_token_id] * pad, [1] * len(ids) + [int(attend_masks)] * pad


def colbert_doc(tok, text: str, marker: int) -> list[int]:
    pieces = tok(text, add_special_tokens=False)["input_ids"][: DOC_MAXLEN - 3]
    return [tok.cls_token_id, marker, *pieces, tok.sep_token_id]


def expected_docs(bert, tok, project, marker: int, skip: set[int], texts=DOCS):
    vectors, lens = [], []
    for text in texts:
        ids = colbert_doc(tok, text, marker)
        out = forward(bert, ids, [1] * len(ids), project)
        keep = [i for i, token in enumerate(ids) if token not in skip]
        vectors.append(out[keep])
        lens.append(len(keep))
    return torch.cat(vectors), lens


# --- Stanford ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attend", "weights"), [(False, "model.safetensors"), (True, "pytorch_model.bin")]
)
def test_stanford_layout_matches_reference(tmp_path: Path, attend: bool, weights: str) -> None:
    bert, linear = write_stanford(tmp_path / "stanford", attend, weights)
    encoder = ColBERTEncoder(tmp_path / "stanford", device="cpu", precision="fp32")
    assert encoder.layout == "stanford"
    assert encoder.dim == 16 and encoder.settings.attend_to_mask_tokens is attend
    tok = encoder.tokenizer
    project = lambda h: h @ linear.T  # noqa: E731

    q, mask = encoder.encode_queries(QUERIES, batch_size=2)
    assert q.shape == (len(QUERIES), QUERY_MAXLEN, 16) and q.dtype == torch.float32
    assert mask.all()
    assert encoder.last_truncated == 1
    for row, text in enumerate(QUERIES):
        ids, attention = colbert_query(tok, text, tok.convert_tokens_to_ids("[unused0]"), attend)
        torch.testing.assert_close(
            q[row], forward(bert, ids, attention, project), atol=1e-5, rtol=0
        )

    skip = {tok.encode(p, add_special_tokens=False)[0] for p in string.punctuation}
    want, lens = expected_docs(bert, tok, project, tok.convert_tokens_to_ids("[unused1]"), skip)
    d, doclens = encoder.encode_documents(DOCS, batch_size=2)
    assert doclens.dtype == torch.int64 and doclens.tolist() == lens
    assert lens[1] == lens[2] == 3  # "..." and "": [CLS], [D] marker and [SEP] are kept
    assert doclens[3] == DOC_MAXLEN - 4  # truncated, then two "," and two ";" dropped
    assert encoder.last_truncated == 1
    torch.testing.assert_close(d, want, atol=1e-5, rtol=0)


def test_attending_to_masks_changes_the_query(tmp_path: Path) -> None:
    write_stanford(tmp_path / "a", attend_to_mask_tokens=False)
    write_stanford(tmp_path / "b", attend_to_mask_tokens=True)
    plain = ColBERTEncoder(tmp_path / "a", device="cpu", precision="fp32")
    attending = ColBERTEncoder(tmp_path / "b", device="cpu", precision="fp32")
    first, _ = plain.encode_queries(["vitamin c"])
    second, _ = attending.encode_queries(["vitamin c"])
    assert not torch.allclose(first, second, atol=1e-3)


def test_stanford_without_projection_or_tokenizer(tmp_path: Path) -> None:
    bert, _ = write_stanford(tmp_path / "s")
    state = {f"bert.{k}": v.contiguous() for k, v in bert.state_dict().items()}
    save_file(state, str(tmp_path / "s" / "model.safetensors"))
    with pytest.raises(OdqaError, match=r"model\.safetensors: no linear\.weight"):
        ColBERTEncoder(tmp_path / "s", device="cpu")
    write_stanford(tmp_path / "t")
    for name in TOKENIZER_FILES:
        (tmp_path / "t" / name).unlink()
    with pytest.raises(OdqaError, match=r"/t: no tokenizer"):
        ColBERTEncoder(tmp_path / "t", device="cpu")


# --- PyLate --------------------------------------------------------------------------------------


def test_pylate_layout_matches_reference(tmp_path: Path) -> None:
    bert, layers = write_pylate(tmp_path / "pylate")
    encoder = ColBERTEncoder(tmp_path / "pylate", device="cpu", precision="fp32")
    assert encoder.layout == "pylate" and encoder.dim == 16
    tok = encoder.tokenizer
    assert len(tok) == 30524  # the prefixes are vocabulary entries, inserted by id
    project = torch.nn.Sequential(*layers)
    texts = [f"  {text} " for text in QUERIES]  # sentence-transformers strips texts

    q, mask = encoder.encode_queries(texts, batch_size=3)
    assert q.shape == (len(QUERIES), QUERY_MAXLEN, 16) and mask.all()
    for row, text in enumerate(QUERIES):
        ids, attention = colbert_query(tok, text, tok.convert_tokens_to_ids("[Q] "), False)
        torch.testing.assert_close(
            q[row], forward(bert, ids, attention, project), atol=1e-5, rtol=0
        )

    skip = set(tok.convert_tokens_to_ids(list(string.punctuation)))
    want, lens = expected_docs(bert, tok, project, tok.convert_tokens_to_ids("[D] "), skip)
    d, doclens = encoder.encode_documents(DOCS, batch_size=3)
    assert doclens.tolist() == lens and encoder.last_truncated == 1
    torch.testing.assert_close(d, want, atol=1e-5, rtol=0)


def test_pylate_without_query_expansion_masks_padding(tmp_path: Path) -> None:
    write_pylate(tmp_path / "p")
    path = tmp_path / "p" / "config_sentence_transformers.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {"do_query_expansion": False}))
    encoder = ColBERTEncoder(tmp_path / "p", device="cpu", precision="fp32")
    texts = ["vitamin c", "what causes scurvy?"]
    q, mask = encoder.encode_queries(texts)
    lengths = [len(encoder.tokenizer(text)["input_ids"]) + 1 for text in texts]  # + [Q]
    assert lengths[0] == 5 and mask.sum(dim=1).tolist() == lengths
    assert q.shape == (2, lengths[1], 16) and (q[0, 5:] == 0).all()


def test_pylate_without_projection(tmp_path: Path) -> None:
    write_pylate(tmp_path / "p")
    (tmp_path / "p" / "2_Dense" / "model.safetensors").unlink()
    with pytest.raises(OdqaError, match=r"2_Dense: the projection weights are missing"):
        ColBERTEncoder(tmp_path / "p", device="cpu")
    modules = tmp_path / "p" / "modules.json"
    modules.write_text(json.dumps(json.loads(modules.read_text())[:1]))
    with pytest.raises(OdqaError, match="lists no Dense module"):
        ColBERTEncoder(tmp_path / "p", device="cpu")


# --- plain encoder -------------------------------------------------------------------------------


def test_plain_layout_matches_reference(tiny_model: Path) -> None:
    encoder = ColBERTEncoder(tiny_model, device="cpu", precision="fp32", doc_maxlen=DOC_MAXLEN)
    assert encoder.layout == "plain" and encoder.dim == 64
    assert encoder.settings.query_maxlen == 32 and not encoder.settings.query_augmentation
    bert, tok = BertModel.from_pretrained(str(tiny_model)).eval(), encoder.tokenizer
    identity = lambda h: h  # noqa: E731

    q, mask = encoder.encode_queries(QUERIES, batch_size=2)
    lengths = [len(tok(text)["input_ids"][:32]) for text in QUERIES]
    assert mask.sum(dim=1).tolist() == [min(n, 32) for n in lengths]
    assert q.shape == (len(QUERIES), max(lengths), 64)
    assert mask[1].sum() == 4  # "?!" keeps [CLS] ? ! [SEP]: queries keep punctuation
    for row, text in enumerate(QUERIES):
        ids = tok(text, truncation=True, max_length=32)["input_ids"]
        want = forward(bert, ids, [1] * len(ids), identity)
        torch.testing.assert_close(q[row, : len(ids)], want, atol=1e-5, rtol=0)
        assert (q[row, len(ids) :] == 0).all()

    punctuation = {tok.encode(p, add_special_tokens=False)[0] for p in string.punctuation}
    d, doclens = encoder.encode_documents(DOCS, batch_size=2)
    vectors, lens = [], []
    for text in DOCS:
        ids = tok(text, truncation=True, max_length=DOC_MAXLEN)["input_ids"]
        keep = [i for i, t in enumerate(ids[1:-1], start=1) if t not in punctuation]
        vectors.append(forward(bert, ids, [1] * len(ids), identity)[keep])
        lens.append(len(keep))
    assert doclens.tolist() == lens and lens[1] == lens[2] == 0
    assert encoder.last_truncated == 1
    torch.testing.assert_close(d, torch.cat(vectors), atol=1e-5, rtol=0)


@pytest.mark.slow
def test_embedded_minilm_plain() -> None:
    encoder = ColBERTEncoder(None, device="cpu", precision="fp32")
    assert encoder.layout == "plain" and encoder.dim == 384
    d, doclens = encoder.encode_documents(["The cell divides.", ""])
    assert doclens.tolist() == [3, 0]  # the, cell, divides: [CLS], [SEP] and "." dropped
    torch.testing.assert_close(d.norm(dim=1), torch.ones(3))
    description = encoder.describe()
    assert json.loads(json.dumps(description)) == description
    assert description["layout"] == "plain" and description["doc_maxlen"] == 256


def test_empty_inputs_and_length_override(tiny_model: Path) -> None:
    encoder = ColBERTEncoder(tiny_model, device="cpu", query_maxlen=8, doc_maxlen=10_000)
    assert encoder.settings.query_maxlen == 8 and encoder.settings.doc_maxlen == 512
    q, mask = encoder.encode_queries([])
    d, doclens = encoder.encode_documents([])
    assert q.shape == (0, 0, 64) and mask.shape == (0, 0)
    assert d.shape == (0, 64) and doclens.shape == (0,)


# --- odqa's own checkpoints: saved, loaded, encoded the same ------------------------------------


def stanford_reference(folder: Path):
    """BERT and the projection rebuilt from a Stanford folder's raw weights, by hand."""
    with safe_open(str(folder / "model.safetensors"), framework="pt") as handle:
        state = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    linear = state.pop("linear.weight")
    bert = BertModel(BertConfig.from_pretrained(str(folder))).eval()
    bert.load_state_dict({name.removeprefix("bert."): tensor for name, tensor in state.items()})
    return bert, linear


def assert_encodes_as_stanford_reference(encoder: ColBERTEncoder, folder: Path) -> None:
    bert, linear = stanford_reference(folder)
    tok = AutoTokenizer.from_pretrained(str(folder))
    project = lambda h: h @ linear.T  # noqa: E731
    q, _ = encoder.encode_queries(QUERIES)
    for row, text in enumerate(QUERIES):
        ids, attention = colbert_query(tok, text, tok.convert_tokens_to_ids("[unused0]"), False)
        torch.testing.assert_close(
            q[row], forward(bert, ids, attention, project), atol=1e-5, rtol=0
        )
    skip = {tok.encode(p, add_special_tokens=False)[0] for p in string.punctuation}
    want, lens = expected_docs(bert, tok, project, tok.convert_tokens_to_ids("[unused1]"), skip)
    d, doclens = encoder.encode_documents(DOCS)
    assert doclens.tolist() == lens
    torch.testing.assert_close(d, want, atol=1e-5, rtol=0)


def test_a_saved_checkpoint_loads_back_to_identical_vectors(
    tiny_model: Path, tmp_path: Path
) -> None:
    """Start a head as training does, move every weight (as training would), save it the way
    training saves: the folder loads back to bit-identical vectors, and encodes as the
    Stanford rules say over its raw weights."""
    start = start_colbert(tiny_model, 16, DOCS, tmp_path / "start")
    scorer = ColBERTScorer(
        ColBERTEncoder(start, device="cpu", precision="fp32", query_maxlen=QUERY_MAXLEN,
                       doc_maxlen=DOC_MAXLEN),
        training_doc_maxlen=DOC_MAXLEN,
    )  # fmt: skip
    torch.manual_seed(3)
    with torch.no_grad():
        for module in scorer.modules():
            for parameter in module.parameters():
                parameter.add_(torch.randn_like(parameter) * 0.02)
    before = scorer.encoder.encode_queries(QUERIES), scorer.encoder.encode_documents(DOCS)
    scorer.save(tmp_path / "saved")
    loaded = ColBERTEncoder(tmp_path / "saved", device="cpu", precision="fp32")
    assert (loaded.settings.query_maxlen, loaded.settings.doc_maxlen) == (QUERY_MAXLEN, DOC_MAXLEN)
    after = loaded.encode_queries(QUERIES), loaded.encode_documents(DOCS)
    for old, new in zip([*before[0], *before[1]], [*after[0], *after[1]], strict=True):
        assert torch.equal(old, new)
    assert_encodes_as_stanford_reference(loaded, tmp_path / "saved")


def test_a_trained_checkpoint_encodes_as_its_raw_weights_say(
    tiny_model: Path, tmp_path: Path
) -> None:
    """``train_retriever`` end to end: the lengths chosen are the ones recorded and used."""
    out = tmp_path / "trained"
    texts = [DOCS[0], DOCS[4], DOCS[3]]
    examples = [TrainingExample(query, tuple(texts)) for query in QUERIES[:1] + QUERIES[4:]]
    config = TrainConfig(epochs=1, batch_size=2, save_every=0, learning_rate=1e-3)
    summary = train_retriever(
        "colbert", examples, out, config=config, base=tiny_model, dim=16, device="cpu",
        doc_maxlen=DOC_MAXLEN, query_maxlen=QUERY_MAXLEN,
    )  # fmt: skip
    metadata = json.loads((out / "artifact.metadata").read_text())
    assert (metadata["query_maxlen"], metadata["doc_maxlen"]) == (QUERY_MAXLEN, DOC_MAXLEN)
    assert (summary["query_maxlen"], summary["doc_maxlen"]) == (QUERY_MAXLEN, DOC_MAXLEN)
    assert summary["training_doc_maxlen"] == DOC_MAXLEN
    encoder = ColBERTEncoder(out, device="cpu", precision="fp32")
    assert_encodes_as_stanford_reference(encoder, out)
