"""The data stage: read the corpus and QA pairs from `data/`, and keep them in the LanceDB feature store."""
