"""Datasets: files, synthetic sets, preprocessing and the in-memory device loader."""
