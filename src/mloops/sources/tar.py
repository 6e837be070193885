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
from . import escapes_extraction

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
    label = "pytorch-legacy-tar" if torch_layout else _label(names)
    ctx.record(item, label)
    for member in members:
        if not member.isfile():
            continue
        if escapes_extraction(member.name):
            ctx.report(
                rules.PATH_TRAVERSAL.finding(
                    item.location.child(member.name), f"member {member.name!r} is written outside the target folder"
                )
            )
        child = item.child(
            Window(item.stream, member.offset_data, member.size), member.name, member.size, None, (label,)
        )
        if torch_layout and member.name in ("storages", "tensors"):
            torch_legacy_tar.analyze_member(ctx, child, member.name)
        else:
            ctx.scan(child)


def _label(names: set[str]) -> str:
    # NeMo checkpoints: a tar of a YAML config, a torch checkpoint and tokenizer files.
    if any(name.rsplit("/", 1)[-1] == "model_config.yaml" for name in names):
        return "nemo"
    return "tar"
