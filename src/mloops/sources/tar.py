"""tar archives, including the oldest PyTorch checkpoint layout (storages, tensors, pickle).

Members are windows on the archive; nothing is extracted. Names with ``..`` or an
absolute path are reported, since extracting them writes outside the target folder.
"""

from __future__ import annotations

from .. import rules
from ..analyzers import torch_legacy_tar
from ..context import Item, ScanContext
from ..limits import LimitExceeded
from ..streams import Window

TORCH_TAR_MEMBERS = {"storages", "tensors", "pickle"}


def scan(ctx: ScanContext, item: Item) -> None:
    import tarfile  # imported on the first tar: most scans never meet one

    members = []
    item.stream.seek(0)  # TarFile starts reading where the stream stands
    try:
        with tarfile.TarFile(fileobj=item.stream, mode="r") as archive:  # type: ignore[call-overload]
            for member in archive:
                members.append(member)
                if len(members) > ctx.limits.max_members:
                    raise LimitExceeded(f"more than {ctx.limits.max_members} archive members")
                ctx.budget.check_time()
    except tarfile.TarError as exc:
        ctx.report(
            rules.MALFORMED_CONTAINER.finding(item.location, f"tar archive damaged after {len(members)} members: {exc}")
        )
    names = {member.name for member in members if member.isfile()}
    torch_layout = TORCH_TAR_MEMBERS <= names
    ctx.record(item, "pytorch-legacy-tar" if torch_layout else "tar")
    for member in members:
        if not member.isfile():
            continue
        if member.name.startswith("/") or ".." in member.name.split("/"):
            ctx.report(
                rules.CONTAINER_ANOMALY.finding(
                    item.location.child(member.name), "member path escapes the extraction folder"
                )
            )
        child = item.child(Window(item.stream, member.offset_data, member.size), member.name, member.size)
        if torch_layout and member.name in ("storages", "tensors"):
            torch_legacy_tar.analyze_member(ctx, child, member.name)
        else:
            ctx.scan(child)
