"""Differential oracle for mloops' pickle engine: generated and mutated pickles, scanned by mloops and,
when mloops claims them safe, loaded by the real unpicklers in a sandboxed worker that records what ran.

    recorder.py   runs inside the throwaway worker: audit hook, profiler, snapshots, the real loads
    oracle.py     scans each case with mloops, sends claimed-clean cases to workers, gives the verdict
    generator.py  seeded grammar-based generator of pickle programs (protocols 0-5)
    mutate.py     mutations of real benign checkpoints made by the libraries themselves
"""
