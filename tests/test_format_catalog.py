"""The format labels agree: every label sniffing gives has a handler, every label an analyzer records has a
catalog entry (data/formats.toml), and a label without one fails loudly instead of counting as "other"."""

from __future__ import annotations

import io
import pathlib
import re

import pytest

from mloops import formats, scan, sniff
from mloops.context import Item, ScanContext
from mloops.core import Location
from mloops.limits import Limits
from mloops.picklevm.policy import default_policy

SRC = pathlib.Path(scan.__file__).resolve().parent


def test_every_sniffed_label_has_a_handler():
    labels = {label for _, label in sniff._SIMPLE_MAGIC}
    labels |= {label for label, _ in (*sniff.DETECTORS, *sniff.TEXT_DETECTORS)}
    assert len(labels) > 20
    assert labels <= set(scan.HANDLERS), sorted(labels - set(scan.HANDLERS))


def test_every_literal_label_an_analyzer_records_is_in_the_catalog():
    recorded = {
        label
        for path in SRC.rglob("*.py")
        for label in re.findall(r'\.record\(\w+, "([^"]+)"\)', path.read_text(encoding="utf-8"))
    }
    assert len(recorded) > 25
    assert recorded <= set(formats.catalog()), sorted(recorded - set(formats.catalog()))


def test_an_unknown_label_fails_loudly():
    ctx = ScanContext("x", Limits(), default_policy(), scan.dispatch)
    item = Item(io.BytesIO(b""), Location("x"), 0, "x", 0)
    with pytest.raises(LookupError, match=r"formats\.toml"):
        ctx.record(item, "no-such-format")
