"""Platforms: ``mloops probe`` finds exposed, unauthenticated and known-vulnerable ML platforms over HTTP, read-only.

targets (URL, host:port, host, CIDR) -> endpoints -> fingerprints (data/platforms/*.toml) matched on GET,
HEAD and OPTIONS answers -> platform, version, open or protected features -> findings in the same report
as ``mloops scan``. Nothing is ever written, submitted or executed on a target.

``advisories`` matches installed or fingerprinted versions to known CVEs (data/advisories.toml), and
``audit_env`` checks the installed ML packages of an environment against them.
"""
