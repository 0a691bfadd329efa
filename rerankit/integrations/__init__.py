"""Rerankers for RAG frameworks, over every rerankit model.

Each framework has its own module and extra, imported on its own (this package imports none
of them):

- ``rerankit.integrations.langchain.RerankitRerank``: a LangChain document compressor
  (extra ``langchain``; docs/langchain.md);
- ``rerankit.integrations.llama_index.RerankitRerank``: a LlamaIndex node postprocessor
  (extra ``llama-index``; docs/llama-index.md);
- ``rerankit.integrations.haystack.RerankitRanker``: a Haystack component
  (extra ``haystack``; docs/haystack.md).
"""
