"""``mloops audit``: the scan, the probe and the registry sources in one run, joined into an attack graph whose
chains lead from an entry to a crown jewel, with the fewest fixes that break them."""
