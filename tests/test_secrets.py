"""Secrets in notebook cells, outputs and source files: found, redacted everywhere, quiet on ordinary content.

Fake tokens are assembled at run time from pieces, so this file itself holds no string that a secret
scanner (or a code host's push protection) would take for a real credential.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import random
import string
import struct
import subprocess
import sys
import uuid
import zlib

import pytest
from corpus.secret_texts import big_image_output, hostile_runs, scan_text

from mloops import rules
from mloops.context import ScanContext
from mloops.core import Capability, Report, Severity
from mloops.mlcode import secrets
from mloops.mlcode.secrets import MAX_TEXT_CHARS, Secret, find_secrets, redact
from mloops.reporters import FORMATS, reporter

RNG = random.Random(4)


def rand(alphabet: str, count: int) -> str:
    return "".join(RNG.choice(alphabet) for _ in range(count))


ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
UPPER = string.ascii_uppercase + string.digits

AWS_KEY_ID = "AK" + "IA" + rand(UPPER, 16)
AWS_SECRET = rand(ALNUM + "/+", 40)
SLACK = "xo" + "xb-" + rand(string.digits, 12) + "-" + rand(string.digits, 13) + "-" + rand(ALNUM, 24).lower()
GITHUB = "gh" + "p_" + rand(ALNUM, 36)
GITLAB = "gl" + "pat-" + rand(ALNUM, 20)
JWT = (
    ".".join(
        base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")
        for part in ({"alg": "HS256", "typ": "JWT"}, {"sub": "data-scientist", "iat": 1700000000})
    )
    + "."
    + rand(ALNUM + "-_", 43)
)
BASIC_AUTH_PASSWORD = rand(ALNUM, 14)
OPENAI_LEGACY = "sk" + "-" + rand(ALNUM, 20) + "T3Blbk" + "FJ" + rand(ALNUM, 20)
OPENAI_PROJECT = "sk" + "-proj-" + rand(ALNUM + "-_", 100)
HUGGING_FACE = "hf" + "_" + rand(ALNUM, 34)
ANTHROPIC = "sk" + "-ant-api03-" + rand(ALNUM + "-_", 93)
DATABRICKS = "da" + "pi" + rand(HEX, 32)
WANDB = rand(HEX, 40)
MLFLOW_PASSWORD = rand(ALNUM, 18)
HIGH_ENTROPY = rand(ALNUM, 32)
PRIVATE_KEY_BODY = base64.b64encode(os.urandom(48)).decode()

# (expected kind, text holding the secret, the secret value)
CASES = [
    ("AWS Access Key", f'aws_access_key_id = "{AWS_KEY_ID}"', AWS_KEY_ID),
    ("AWS Access Key", f'aws_secret_access_key = "{AWS_SECRET}"', AWS_SECRET),
    ("Private Key", f"-----BEGIN RSA PRIVATE KEY-----\n{PRIVATE_KEY_BODY}\n-----END RSA PRIVATE KEY-----", None),
    ("Slack Token", f"client = WebClient(token='{SLACK}')", SLACK),
    ("GitHub Token", f"!git clone https://{GITHUB}@github.com/org/repo", GITHUB),
    ("GitLab Token", f"GITLAB_TOKEN={GITLAB}", GITLAB),
    ("JSON Web Token", f"headers = {{'Authorization': 'Bearer {JWT}'}}", JWT),
    (
        "Basic Auth Credentials",
        f'mlflow.set_tracking_uri("https://alice:{BASIC_AUTH_PASSWORD}@mlflow.example.com")',
        BASIC_AUTH_PASSWORD,
    ),
    ("OpenAI Token", f'openai.api_key = "{OPENAI_LEGACY}"', OPENAI_LEGACY),
    ("OpenAI API key", f"client = OpenAI(api_key='{OPENAI_PROJECT}')", OPENAI_PROJECT),
    ("Hugging Face token", f'login(token="{HUGGING_FACE}")', HUGGING_FACE),
    ("Hugging Face token", f"Your token: {HUGGING_FACE}", HUGGING_FACE),
    ("Anthropic API key", f'anthropic.Anthropic(api_key="{ANTHROPIC}")', ANTHROPIC),
    ("Databricks personal access token", f"DATABRICKS_TOKEN={DATABRICKS}", DATABRICKS),
    ("Weights & Biases API key", f'os.environ["WANDB_API_KEY"] = "{WANDB}"', WANDB),
    ("Weights & Biases API key", f"%env WANDB_API_KEY={WANDB}", WANDB),
    ("Weights & Biases API key", f'wandb.login(key="{WANDB}")', WANDB),
    ("MLflow tracking credential", f'os.environ["MLFLOW_TRACKING_PASSWORD"] = "{MLFLOW_PASSWORD}"', MLFLOW_PASSWORD),
    ("MLflow tracking credential", f"export MLFLOW_TRACKING_TOKEN={MLFLOW_PASSWORD}", MLFLOW_PASSWORD),
    ("MLflow tracking credential", f'{{"MLFLOW_TRACKING_PASSWORD": "{MLFLOW_PASSWORD}"}}', MLFLOW_PASSWORD),
    ("High-entropy secret value", f'config = {{"client_secret": "{HIGH_ENTROPY}"}}', HIGH_ENTROPY),
]


def rendered(ctx: ScanContext) -> dict[str, str]:
    report = Report([ctx.result], 0.1)
    return {fmt: reporter(fmt)(report, Severity.HIGH) for fmt in FORMATS}


@pytest.mark.parametrize(("kind", "text", "value"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_kind_found_and_redacted_in_every_report_format(kind, text, value):
    ctx = scan_text(f"import os\n\n{text}\nprint('done')\n")
    findings = [f for f in ctx.result.findings if f.rule is secrets.EXPOSED_SECRET]
    assert [(f.evidence["kind"], f.evidence["line"]) for f in findings] == [(kind, "3")]
    finding = findings[0]
    assert finding.severity == Severity.HIGH
    assert finding.capability is Capability.CREDENTIAL_ACCESS
    assert finding.evidence["cell"] == "3" and finding.evidence["output"] == "0"
    assert finding.evidence["redacted"] in finding.message
    hidden = [value] if value else [PRIVATE_KEY_BODY]
    for secret in hidden:
        assert secret not in finding.message
        assert all(secret not in v for v in finding.evidence.values())
        for fmt, output in rendered(ctx).items():
            assert secret not in output, fmt
            assert "MLO330" in output, fmt


def test_redaction_shows_at_most_four_characters_and_the_length():
    assert redact(HUGGING_FACE) == f"{HUGGING_FACE[:4]}… (37 characters)"
    assert redact("pa55word") == "pa… (8 characters)"
    assert redact("abc") == "… (3 characters)"


def test_secret_in_json_escaped_output_is_reported_once_at_its_first_line():
    text = f"token {HUGGING_FACE}\nagain {HUGGING_FACE}\n"
    assert find_secrets(text) == [Secret("Hugging Face token", 1, redact(HUGGING_FACE))]


def test_secret_at_the_end_of_a_long_line_is_found():
    text = "x = [" + ", ".join(str(i) for i in range(20_000)) + f"]  # {AWS_KEY_ID}\n"
    assert [s.kind for s in find_secrets(text)] == ["AWS Access Key"]


def png_base64(width: int, height: int) -> str:
    """A real PNG (random pixels, so it does not compress), base64 as Jupyter stores image/png."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + os.urandom(width * 3) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    return base64.b64encode(png).decode()


def matplotlib_png() -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots()
    axes.imshow([[RNG.random() for _ in range(64)] for _ in range(64)])
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def pandas_html_table() -> str:
    import pandas as pd

    frame = pd.DataFrame(
        {
            "run_id": [uuid.uuid4().hex for _ in range(20)],
            "commit": [hashlib.sha1(os.urandom(8)).hexdigest() for _ in range(20)],
            "checkpoint_sha256": [hashlib.sha256(os.urandom(8)).hexdigest() for _ in range(20)],
            "uuid": [str(uuid.uuid4()) for _ in range(20)],
            "loss": [RNG.random() for _ in range(20)],
        }
    )
    return frame.to_html()


BENIGN_CODE = """
import os, getpass
from huggingface_hub import login
login(token=os.environ["HF_TOKEN"])
HF_TOKEN = os.environ.get("HF_TOKEN")
os.environ["MLFLOW_TRACKING_PASSWORD"] = getpass.getpass()
MLFLOW_TRACKING_PASSWORD=os.environ.get("PW")
%env MLFLOW_TRACKING_TOKEN=${MLFLOW_TOKEN}
api_key = "<your-api-key>"
password = "{password}"
wandb.login(key=os.environ["WANDB_API_KEY"])
client = OpenAI(api_key=os.environ["OPENAI_API_KEY"])
mlflow.set_tracking_uri("https://mlflow.example.com:5000")
model = AutoModel.from_pretrained("bert-base-uncased", revision="3f786850e387550fdab836ed7e6dc881de23001b")
"""


def model_config() -> str:
    return json.dumps(
        {
            "_name_or_path": "org/model",
            "_commit_hash": hashlib.sha1(b"x").hexdigest(),
            "architectures": ["BertModel"],
            "model_sha256": hashlib.sha256(b"weights").hexdigest(),
            "tokenizer_md5": hashlib.md5(b"tok").hexdigest(),
            "experiment_id": str(uuid.uuid4()),
            "run_uuid": uuid.uuid4().hex,
            "vocab_hash": hashlib.blake2b(b"v").hexdigest(),
        },
        indent=2,
    )


@pytest.mark.parametrize(
    "text",
    [
        png_base64(64, 64),
        matplotlib_png(),
        "\n".join(png_base64(16, 16)[i : i + 76] for i in range(0, 2000, 76)),
        f'<img src="data:image/png;base64,{png_base64(32, 32)}"/>',
        pandas_html_table(),
        BENIGN_CODE,
        model_config(),
        "\n".join(str(uuid.uuid4()) for _ in range(200)),
        "\n".join(hashlib.sha256(str(i).encode()).hexdigest() for i in range(200)),
    ],
    ids=[
        "png",
        "matplotlib-png",
        "wrapped-base64",
        "data-uri",
        "pandas-html",
        "env-lookups",
        "model-config",
        "uuids",
        "sha256",
    ],
)
def test_no_false_alarm_on_ordinary_notebook_content(text):
    assert find_secrets(text) == []


# How fast these are searched is measured by bench/unit_speed.py.
def test_fifty_megabyte_image_output_is_noted():
    ctx = scan_text(big_image_output())
    assert [(f.rule.id, f.severity) for f in ctx.result.findings] == [(rules.SCAN_LIMIT.id, Severity.LOW)]
    assert str(MAX_TEXT_CHARS) in ctx.result.findings[0].message


def test_many_short_lines_and_hostile_prefix_runs_find_nothing():
    for text in hostile_runs():
        assert find_secrets(text) == [], text[:8]


def test_time_budget_is_checked_while_searching():
    calls = []
    find_secrets("a b\n" * 100_000, lambda: calls.append(1))
    assert len(calls) > 10


def test_library_is_imported_only_when_text_is_searched_and_never_calls_the_network():
    child = f"""
import sys, socket
import mloops.mlcode.secrets as s
assert "detect_secrets" not in sys.modules
def refuse(*args, **kwargs):
    raise AssertionError("network use")
socket.socket.connect = refuse
socket.create_connection = refuse
found = s.find_secrets({SLACK + chr(10) + AWS_KEY_ID!r})
assert sorted(x.kind for x in found) == ["AWS Access Key", "Slack Token"], found
assert "detect_secrets" in sys.modules
"""
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_report_without_secrets_is_empty():
    ctx = scan_text("import torch\nmodel = torch.nn.Linear(2, 2)\n")
    assert ctx.result.findings == []


# ------------------------------------------------------------ one secret, one finding, in notebooks and sources


def _scan(path) -> list:
    from mloops import scan_path

    return [f for f in scan_path(str(path)).findings if f.severity > Severity.INFO]


def test_secret_in_python_source_is_found_and_redacted(tmp_path):
    path = tmp_path / "upload.py"
    path.write_text(f'import requests\nrequests.post(url, headers={{"Authorization": "Bearer {HUGGING_FACE}"}})\n')
    (finding,) = _scan(path)
    assert finding.rule is secrets.EXPOSED_SECRET and finding.evidence["line"] == "2"
    assert HUGGING_FACE not in finding.message and finding.evidence["redacted"] == redact(HUGGING_FACE)


@pytest.mark.parametrize("container", ["py", "ipynb"])
def test_credential_assignment_is_reported_once_by_the_code_rule(tmp_path, container):
    import nbformat

    source = f'import os\nos.environ["WANDB_API_KEY"] = "{WANDB}"\nother = "{AWS_KEY_ID}"\n'
    path = tmp_path / f"train.{container}"
    if container == "py":
        path.write_text(source)
    else:
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
        path.write_text(nbformat.writes(notebook))
    found = sorted((f.rule.id, f.evidence.get("value") or f.evidence.get("redacted")) for f in _scan(path))
    # The W&B key is MLO327's (a credential variable set to a literal); the AWS key only MLO330 sees.
    assert found == [("MLO327", redact(WANDB)), ("MLO330", redact(AWS_KEY_ID))]


@pytest.mark.parametrize(
    "text",
    [
        "seq = 'ATGGCCACCAGTTGACCAGTACGATCGATCGGGATCCAGTACGGATCCATGACCAGGTTACCA'\n",  # DNA: ACCA + 16 of A-Z
        "p = 'GVRVLEDGVNYATGNLPGCSFSIFLLALLSCLTVPASAKIARALAHGVRVLEDGVNYATG'\n",  # protein: ...AKIA...
        ">chr1\nACCAGTTGACCAGTACGATC\n",  # a 20-base FASTA line
    ],
)
def test_biological_sequences_are_not_aws_key_ids(text: str) -> None:
    assert find_secrets(text) == []


def test_a_standalone_aws_key_id_is_still_found() -> None:
    assert [s.kind for s in find_secrets("aws_key_id = 'AKIAZ3MSJV4WWNKWW5FG'\n")] == ["AWS Access Key"]
