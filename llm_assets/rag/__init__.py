"""Retrieval over the cleaned corpus: chunking, embedding, the vector store, retrieval and its
quality on golden questions."""
