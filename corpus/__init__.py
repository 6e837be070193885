"""Makers of the files the tests and the benchmarks scan: real files written by the real libraries, and
crafted ones built byte by byte. Shared by tests/ and bench/; never shipped with mloops."""
