"""Jupyter notebooks: saved outputs whose HTML and JavaScript run in the user's kernel session (XSS becomes
remote code execution), judged against the renderers' own fingerprints."""
