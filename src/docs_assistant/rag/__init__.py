"""The RAG stage: chunk + embed the corpus into a LanceDB vector table, retrieve, prompt, generate."""
