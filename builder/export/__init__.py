"""Exports of a built dataset: the authors' layout, WebDataset shards, Hugging Face Parquet."""
