"""Datasets: Hugging Face dataset folders and their loading scripts (code run by ``load_dataset``), and
Arrow/Parquet data whose extension types name Python classes."""
