"""Mitigations that ship with the scanner: loading models safely, converting them off pickle, sanitizing
notebooks, and a registry gate."""
