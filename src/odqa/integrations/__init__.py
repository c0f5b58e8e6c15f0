"""Adapters that let RAG frameworks retrieve from an odqa index.

* :mod:`odqa.integrations.langchain`: ``OdqaRetriever``, a LangChain ``BaseRetriever``
  (``pip install 'odqa[langchain]'``).
* :mod:`odqa.integrations.llama_index`: ``OdqaRetriever``, a LlamaIndex ``BaseRetriever``
  (``pip install 'odqa[llama-index]'``).

Both search through :class:`odqa.Searcher` and carry the same fields (see
:mod:`odqa.integrations.common`). Nothing in odqa imports this package; importing an adapter
without its framework installed is a :class:`~odqa.integrations.common.MissingExtraError`
naming the extra to install.
"""
