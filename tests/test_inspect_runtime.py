"""mloops inspect-runtime against fixture trees standing in for /proc, /sys and /dev, and on this machine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mloops.core import Severity
from mloops.deployments.inspect_runtime import CAPABILITIES, ESCAPE_CAPABILITIES, decode_capabilities, inspect

DOCKER_DEFAULT_CAPS = "00000000a80425fb"  # Docker's default capability set
HARDENED_MOUNTS = """\
1 0 0:50 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l
2 1 0:52 / /proc rw - proc proc rw
3 1 259:1 /var/lib/docker/containers/abc/hosts /etc/hosts rw - ext4 /dev/nvme0n1p1 rw
4 1 0:26 / /sys/fs/cgroup ro - cgroup2 cgroup2 ro
"""


def tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for relative, content in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return tmp_path


def ids(report) -> dict[str, list]:
    found: dict[str, list] = {}
    for finding in report.findings:
        found.setdefault(finding.rule.id, []).append(finding)
    return found


def test_hardened_container_gives_no_finding(tmp_path: Path):
    root = tree(
        tmp_path,
        {
            "proc/self/status": f"Name:\tpython\nCapEff:\t{DOCKER_DEFAULT_CAPS}\nNoNewPrivs:\t1\nSeccomp:\t2\n",
            "proc/self/attr/current": "docker-default (enforce)\n",
            "proc/self/mountinfo": HARDENED_MOUNTS,
            "dev/null": "",
            "sys/class/dmi/id/sys_vendor": "QEMU\n",
        },
    )
    report = inspect(str(root), environment=["PATH", "HOME", "MODEL_NAME", "AWS_CA_BUNDLE", "TOKENIZERS_PARALLELISM"])
    assert report.findings == []
    assert report.subject == "runtime"


def test_an_escapable_container_is_reported_link_by_link(tmp_path: Path):
    root = tree(
        tmp_path,
        {
            "proc/self/status": "CapEff:\t000001ffffffffff\nSeccomp:\t0\n",
            "proc/self/attr/current": "unconfined\n",
            "sys/kernel/security/apparmor/profiles": "",
            "proc/self/mountinfo": HARDENED_MOUNTS
            + "5 1 259:1 / /host rw - ext4 /dev/nvme0n1p1 rw\n"
            + "6 1 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
            "sys/fs/cgroup/memory/release_agent": "",
            "var/run/docker.sock": "",
            "var/run/secrets/kubernetes.io/serviceaccount/token": "eyJhbGciOi...",
            "sys/class/dmi/id/sys_vendor": "Amazon EC2\n",
            "dev/nvidia0": "",
            "dev/nvidiactl": "",
        },
    )
    report = inspect(str(root), environment=["PATH", "HF_TOKEN", "AWS_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_PASSWORD"])
    found = ids(report)
    messages = " | ".join(f.message for f in report.findings)
    assert "every capability" in messages and "release_agent" in messages
    assert {f.severity for f in found["MLO701"]} == {Severity.CRITICAL}
    assert found["MLO703"][0].evidence["path"] == "/var/run/docker.sock"
    assert found["MLO704"][0].evidence["mount"] == "/host"
    assert {f.evidence.get("Seccomp") or f.evidence.get("apparmor") for f in found["MLO708"]} == {
        "0 (disabled)",
        "unconfined",
    }
    assert "service-account token" in found["MLO710"][0].message
    assert "AWS" in found["MLO717"][0].message
    assert found["MLO717"][0].severity == Severity.MEDIUM
    assert found["MLO712"][0].evidence["devices"] == "nvidia0, nvidiactl"
    (credentials,) = found["MLO718"]
    assert credentials.evidence["names"] == "AWS_SECRET_ACCESS_KEY, HF_TOKEN, MLFLOW_TRACKING_PASSWORD"
    assert "eyJ" not in messages  # values and token contents are never read into the report


def test_one_escape_capability_is_named(tmp_path: Path):
    with_ptrace = f"{int(DOCKER_DEFAULT_CAPS, 16) | 1 << 19:016x}"
    root = tree(tmp_path, {"proc/self/status": f"CapEff:\t{with_ptrace}\nSeccomp:\t2\n"})
    (finding,) = inspect(str(root), environment=[]).findings
    assert finding.rule.id == "MLO705" and "SYS_PTRACE" in finding.message
    assert "DAC_OVERRIDE" not in finding.message  # in Docker's default set: no escape on its own


def test_capability_decoding():
    assert decode_capabilities("0") == []
    assert decode_capabilities("0000000000200000") == ["SYS_ADMIN"]
    assert "NET_BIND_SERVICE" in decode_capabilities(DOCKER_DEFAULT_CAPS)


def test_runs_on_this_machine_and_reads_its_own_status():
    report = inspect("/")
    status = Path("/proc/self/status").read_text()
    effective = next(line.split(":")[1].strip() for line in status.splitlines() if line.startswith("CapEff"))
    caps = [(f.rule.id, f.evidence["CapEff"]) for f in report.findings if "CapEff" in f.evidence]
    held = decode_capabilities(effective)
    if len(held) >= len(CAPABILITIES) - 3:
        assert caps == [("MLO701", effective)]
    elif set(held) & set(ESCAPE_CAPABILITIES):
        assert caps == [("MLO705", effective)]
    else:
        assert caps == []


def test_cli(tmp_path: Path):
    command = [sys.executable, "-m", "mloops", "inspect-runtime", "--root", str(tmp_path), "--format", "json"]
    ok = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and '"subject": "runtime"' in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "mloops", "inspect-runtime", "--root", str(tmp_path / "no")],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
