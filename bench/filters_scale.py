"""Metadata filters at scale: writing the columns, and a filter's mask, over N documents.

``python bench/filters_scale.py --documents 1000000``: synthetic metadata (a year, one of
three sources, a language) for N documents written as ``odqa index`` writes it, then the
document mask of a few filters and the passage mask a search uses (two passages a document).
"""

from __future__ import annotations

import argparse
import shutil
import time

import numpy as np

from common import WORK, peak_rss_mb, report
from odqa.corpus import Document
from odqa.index.filters import document_mask, parse_where
from odqa.index.metadata import FOLDER, MetadataColumns, MetadataWriter

FILTERS = {
    "equality": {"year": 2020},
    "in": {"source": ["pubmed", "pmc"]},
    "range": {"year": {"gte": 2018, "lt": 2021}},
    "all three fields": {"year": {"gte": 2000}, "source": "pmc", "lang": "en"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=4096)
    args = parser.parse_args()
    folder = WORK / "filters"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    sources, langs = ["pubmed", "pmc", "web"], ["en", "de", "fr", "en"]
    writer = MetadataWriter(folder)
    writing = 0.0
    for first in range(0, args.documents, args.batch):
        batch = [
            Document(str(i), "", "", {"year": 1970 + i % 55, "source": sources[i % 3],
                                      "lang": langs[i % 4]})
            for i in range(first, min(first + args.batch, args.documents))
        ]  # fmt: skip
        start = time.perf_counter()
        writer.add(batch)
        writing += time.perf_counter() - start
    writer.close()
    columns = MetadataColumns(folder, args.documents)
    owners = np.repeat(np.arange(args.documents), 2)
    masks = {}
    for name, where in FILTERS.items():
        start = time.perf_counter()
        kept = document_mask(columns, parse_where(where))
        rows = kept[owners]
        masks[name] = {
            "ms": round((time.perf_counter() - start) * 1000, 1),
            "kept_documents": int(kept.sum()),
        }
        assert rows.sum() == 2 * kept.sum()
    disk = sum(path.stat().st_size for path in (folder / FOLDER).iterdir())
    report(
        "filters_scale",
        {
            "documents": args.documents,
            "write_us_per_document": round(writing / args.documents * 1e6, 2),
            "bytes_per_document": round(disk / args.documents, 1),
            "mask_with_passages": masks,
            "peak_rss_mb": round(peak_rss_mb()),
        },
    )


if __name__ == "__main__":
    main()
