"""``mloops inspect-runtime``: what code running here (a model's payload, say) could reach beyond this container.

Reads only /proc, /sys, /dev, mount tables, well-known socket and token paths, and the names of environment
variables; it opens no connection and changes nothing. ``root`` points at a tree that stands in for ``/``
(tests use fixture trees; ``/`` is the machine itself).
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Iterable
from typing import NamedTuple

from ..core import Asset, EnvironmentResult, Finding, Location, RuntimeReport, Severity
from . import deployment_checks as checks

# Linux capability numbers (include/uapi/linux/capability.h).
CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
    "CHECKPOINT_RESTORE",
)  # fmt: skip
# Capabilities beyond Docker's default set that known escapes use (DAC_OVERRIDE and MKNOD are in the default
# set and escape nothing alone).
ESCAPE_CAPABILITIES = ("SYS_ADMIN", "SYS_PTRACE", "SYS_MODULE", "DAC_READ_SEARCH", "SYS_RAWIO", "NET_ADMIN", "BPF")
RUNTIME_SOCKETS = ("var/run/docker.sock", "run/docker.sock", "run/containerd/containerd.sock",
                   "var/run/containerd/containerd.sock", "var/run/crio/crio.sock", "run/crio/crio.sock")  # fmt: skip
TOKEN = "var/run/secrets/kubernetes.io/serviceaccount/token"
HOST_FILESYSTEMS = ("ext2", "ext3", "ext4", "xfs", "btrfs", "zfs")
# Files a runtime bind-mounts from the host into every container: expected, not an escape.
EXPECTED_HOST_MOUNTS = ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/dev/termination-log")
GPU_DEVICES = re.compile(r"^(nvidia\d*|nvidiactl|nvidia-uvm|nvidia-modeset|kfd|dri)$")
CLOUD_VENDORS = {"Amazon EC2": "AWS", "Google Compute Engine": "Google Cloud", "Microsoft Corporation": "Azure"}


class Runtime(NamedTuple):
    root: str
    environment: Iterable[str]  # variable names only
    status: dict[str, str]  # /proc/self/status fields
    mounts: list[tuple[str, str, str]]  # (root within the source, mount point, filesystem type)


def _read(root: str, relative: str) -> str | None:
    try:
        with open(os.path.join(root, relative), encoding="utf-8", errors="replace") as handle:
            return handle.read(1 << 20)
    except OSError:
        return None


def inspect(root: str = "/", environment: Iterable[str] | None = None) -> RuntimeReport:
    started = time.monotonic()
    names = list(os.environ) if environment is None else list(environment)
    runtime = Runtime(root, names, _status(root), _mounts(root))
    location = Location(f"runtime:{os.path.abspath(root)}")
    result = EnvironmentResult(location.path, [], [Asset(location, "runtime")])
    for check in (_capabilities, _confinement, _sockets, _release_agent, _host_mounts, _token, _cloud, _gpus, _env):
        result.findings.extend(check(runtime, location))
    return RuntimeReport(result, time.monotonic() - started)


def _status(root: str) -> dict[str, str]:
    text = _read(root, "proc/self/status") or ""
    return {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in text.splitlines())}


def decode_capabilities(mask: str) -> list[str]:
    value = int(mask, 16)
    return [name for bit, name in enumerate(CAPABILITIES) if value >> bit & 1]


def _capabilities(runtime: Runtime, location: Location) -> list[Finding]:
    effective = runtime.status.get("CapEff")
    if effective is None:
        return []
    held = decode_capabilities(effective)
    dangerous = [name for name in ESCAPE_CAPABILITIES if name in held]
    evidence = {"CapEff": effective, "capabilities": ", ".join(held) or "none"}
    if len(held) >= len(CAPABILITIES) - 3:  # every capability the kernel knows: a privileged container or root
        message = "the process holds every capability: a privileged container (or root on the host)"
        return [checks.PRIVILEGED_CONTAINER.finding(location, message, evidence, severity=Severity.CRITICAL)]
    if dangerous:
        message = f"the process holds {', '.join(dangerous)}, enough to leave the container"
        return [checks.DANGEROUS_CAPABILITY.finding(location, message, evidence)]
    return []


def _confinement(runtime: Runtime, location: Location) -> list[Finding]:
    found = []
    seccomp = runtime.status.get("Seccomp")
    if seccomp == "0":
        message = "no seccomp filter: every syscall an escape exploit needs is allowed"
        found.append(checks.UNCONFINED_PROFILE.finding(location, message, {"Seccomp": "0 (disabled)"}))
    apparmor = _read(runtime.root, "proc/self/attr/current")
    if (
        apparmor is not None
        and apparmor.strip() == "unconfined"
        and os.path.exists(os.path.join(runtime.root, "sys/kernel/security/apparmor"))
    ):
        message = "AppArmor is enabled on the host but this process is unconfined"
        found.append(
            checks.UNCONFINED_PROFILE.finding(location, message, {"apparmor": "unconfined"}, severity=Severity.LOW)
        )
    return found


def _sockets(runtime: Runtime, location: Location) -> list[Finding]:
    found = []
    for relative in RUNTIME_SOCKETS:
        path = os.path.join(runtime.root, relative)
        try:
            mode = os.stat(path).st_mode
        except OSError:
            continue
        if stat.S_ISSOCK(mode) or runtime.root != "/":  # fixture trees cannot hold sockets: a file stands in
            writable = os.access(path, os.W_OK)
            message = f"the container runtime socket /{relative} is {'writable' if writable else 'present'} here"
            severity = Severity.CRITICAL if writable else Severity.HIGH
            found.append(checks.RUNTIME_SOCKET.finding(location, message, {"path": "/" + relative}, severity=severity))
    return found


def _mounts(root: str) -> list[tuple[str, str, str]]:
    """(root within the source, mount point, filesystem type) of each mount."""
    found = []
    for line in (_read(root, "proc/self/mountinfo") or "").splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) >= 5 and tail:
            found.append((fields[3], fields[4], tail[0]))
    return found


def _release_agent(runtime: Runtime, location: Location) -> list[Finding]:
    writable = []
    for _, mount_point, fs_type in runtime.mounts:
        agent = os.path.join(runtime.root, mount_point.lstrip("/"), "release_agent")
        if fs_type == "cgroup" and os.path.exists(agent) and os.access(agent, os.W_OK):
            writable.append(f"{mount_point}/release_agent")
    if not writable:
        return []
    message = f"the cgroup v1 release_agent is writable ({', '.join(writable[:3])}): the host runs the program it names"
    evidence = {"paths": ", ".join(writable)}
    return [checks.PRIVILEGED_CONTAINER.finding(location, message, evidence, severity=Severity.CRITICAL)]


def _host_mounts(runtime: Runtime, location: Location) -> list[Finding]:
    found = []
    for source_root, mount_point, fs_type in runtime.mounts:
        if fs_type not in HOST_FILESYSTEMS or mount_point == "/" or mount_point in EXPECTED_HOST_MOUNTS:
            continue
        if source_root == "/" or mount_point.startswith(("/host", "/rootfs", "/var/lib/kubelet", "/proc")):
            message = f"a host filesystem is mounted at {mount_point} (its {source_root})"
            found.append(
                checks.SENSITIVE_HOST_PATH.finding(location, message, {"mount": mount_point, "source": source_root})
            )
    return found


def _token(runtime: Runtime, location: Location) -> list[Finding]:
    if not os.path.exists(os.path.join(runtime.root, TOKEN)):
        return []
    message = f"a Kubernetes service-account token is readable at /{TOKEN}"
    return [checks.SERVICE_ACCOUNT_TOKEN.finding(location, message, {"path": "/" + TOKEN}, severity=Severity.HIGH)]


def _cloud(runtime: Runtime, location: Location) -> list[Finding]:
    vendor = (_read(runtime.root, "sys/class/dmi/id/sys_vendor") or "").strip()
    product = (_read(runtime.root, "sys/class/dmi/id/product_name") or "").strip()
    cloud = CLOUD_VENDORS.get(product) or CLOUD_VENDORS.get(vendor)
    if cloud is None:
        return []
    message = (f"running on {cloud}: the instance metadata endpoint (169.254.169.254) hands out the node's cloud "
               "credentials unless it is blocked or hop-limited (not probed: no network)")  # fmt: skip
    evidence = {"sys_vendor": vendor, "product_name": product}
    return [checks.CLOUD_METADATA.finding(location, message, evidence)]


def _gpus(runtime: Runtime, location: Location) -> list[Finding]:
    try:
        names = sorted(name for name in os.listdir(os.path.join(runtime.root, "dev")) if GPU_DEVICES.match(name))
    except OSError:
        return []
    if not names:
        return []
    message = f"GPU device nodes are present ({', '.join(names)}): the NVIDIA Container Toolkit escapes apply"
    return [checks.GPU_ALL_DEVICES.finding(location, message, {"devices": ", ".join(names)})]


def _env(runtime: Runtime, location: Location) -> list[Finding]:
    names = sorted({name for name in runtime.environment if checks.CREDENTIAL_NAME.search(name.upper())})
    if not names:
        return []
    listed = ", ".join(names[:20])
    message = f"{len(names)} environment variable(s) look like platform credentials: {listed} (values not read)"
    return [checks.ENVIRONMENT_CREDENTIALS.finding(location, message, {"names": ", ".join(names)})]
