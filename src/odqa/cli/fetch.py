"""``odqa fetch``: web pages into a JSONL corpus."""

from pathlib import Path
from typing import Annotated

import typer

from odqa.cli.errors import user_errors

FETCH_EPILOG = "Example: odqa fetch urls.txt --out corpus.jsonl --concurrency 16 --per-host 2"


def fetch(
    urls: Annotated[Path, typer.Argument(help="A text file of URLs, one a line; # comments.")],
    out: Annotated[Path, typer.Option(help="Corpus JSONL, appended to: a re-run resumes.")],
    concurrency: Annotated[int, typer.Option(help="Requests in flight at once.")] = 16,
    per_host: Annotated[int, typer.Option(help="Requests in flight per host.")] = 2,
    cache: Annotated[
        Path | None, typer.Option(help="Response cache folder (default: OUT.cache).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds allowed per request.")] = 20.0,
    retries: Annotated[
        int, typer.Option(help="Retries after 429, 5xx, timeouts and connection errors.")
    ] = 4,
) -> None:
    """Fetch web pages into a JSONL corpus (main text; PubMed: title and abstract)."""
    from tqdm.auto import tqdm

    from odqa.corpus.web import FetchOptions, fetch_corpus

    with user_errors():
        options = FetchOptions(
            concurrency=concurrency, per_host=per_host, timeout=timeout, retries=retries
        )
        try:
            with tqdm(desc="fetching", unit="url") as bar:
                summary = fetch_corpus(
                    urls,
                    out,
                    options,
                    cache_dir=cache,
                    on_start=lambda total: bar.reset(total=total),
                    on_result=lambda _: bar.update(),
                )
        except KeyboardInterrupt as exc:
            typer.echo("interrupted; run the same command again to resume", err=True)
            raise typer.Exit(130) from exc
        lines = "line" if summary.invalid == 1 else "lines"
        typer.echo(
            f"{summary.ok} ok, {summary.cached} cached, {summary.failed} failed, "
            f"{summary.skipped} skipped, {summary.invalid} invalid {lines}"
        )
        typer.echo(f"documents in {summary.out}; per-URL report in {summary.report}")
