"""ML code rules: unsafe artifact loads and hard-coded credentials found in Python source by AST analysis."""

from __future__ import annotations

import io
import textwrap

import pytest
from corpus.python_code import deep_sources

from mloops.context import Item, ScanContext
from mloops.core import Location, Severity
from mloops.limits import Limits
from mloops.mlcode import python_code
from mloops.mlcode.python_code import capabilities_of, check_source
from mloops.mlcode.secrets import redact
from mloops.picklevm.policy import default_policy
from mloops.scan import dispatch


def findings(source: str):
    """The risks the code rules find (facts for mloops audit, at info, are tested apart)."""
    return [f for f in facts(source) if f.severity > Severity.INFO]


def facts(source: str):
    return check_source(textwrap.dedent(source), Location("train.py")).findings


def only(source: str, rule_id: str):
    found = findings(source)
    assert found, "expected a finding"
    assert {f.rule.id for f in found} == {rule_id}, [(f.rule.id, f.message) for f in found]
    return found


def clean(source: str) -> None:
    found = findings(source)
    assert found == [], [(f.rule.id, f.message) for f in found]


# ------------------------------------------------------------ MLO320 pickle-family loaders


@pytest.mark.parametrize(
    ("source", "callable_name"),
    [
        ("import pickle\npickle.load(open('m.pkl', 'rb'))", "pickle.load"),
        ("import pickle as pk\npk.loads(blob)", "pickle.loads"),
        ("from pickle import loads\nloads(blob)", "pickle.loads"),
        ("from pickle import Unpickler as U\nU(f).load()", "pickle.Unpickler"),
        ("import _pickle\n_pickle.loads(blob)", "_pickle.loads"),
        ("import dill\ndill.load(f)", "dill.load"),
        ("import cloudpickle as cp\ncp.loads(blob)", "cloudpickle.loads"),
        ("import joblib\nmodel = joblib.load('model.joblib')", "joblib.load"),
        ("import pandas as pd\ndf = pd.read_pickle('df.pkl')", "pandas.read_pickle"),
        ("import importlib\np = importlib.import_module('pickle')\np.loads(blob)", "pickle.loads"),
        ("import pickle\nf = getattr(pickle, 'loads')\nf(blob)", "pickle.loads"),
        ("import pickle\nreader = pickle.load\nreader(f)", "pickle.load"),
    ],
)
def test_pickle_family_loads_are_flagged(source, callable_name):
    (finding,) = only(source, "MLO320")
    assert finding.severity == Severity.MEDIUM
    assert finding.evidence["callable"] == callable_name
    assert finding.evidence["line"] == str(source.count("\n") + 1)


def test_pickle_dumps_and_unrelated_loads_are_clean():
    clean(
        """
        import pickle, json
        pickle.dumps(obj)
        json.load(f)
        def load(path):
            return path
        load("x")
        """
    )


def test_objects_named_like_modules_are_not_the_modules():
    clean("from ruamel.yaml import YAML\nyaml = YAML(typ='safe')\nyaml.load(s)\npickle = Store()\npickle.load(k)")


def test_names_imported_elsewhere_resolve_as_written():
    (finding,) = only("state = torch.load(path)", "MLO321")  # a notebook cell whose import is in another cell
    assert finding.evidence["callable"] == "torch.load"


# ------------------------------------------------------------ MLO321 / MLO328 torch.load


def test_torch_load_aliased_without_weights_only_is_medium():
    (finding,) = only("import torch as T\nT.load(f)", "MLO321")
    assert finding.severity == Severity.MEDIUM
    assert finding.evidence == {"callable": "torch.load", "written": "T.load", "line": "2"}
    assert finding.location.offset == len("import torch as T\n")


def test_torch_load_weights_only_false_is_high_through_from_import_alias():
    (finding,) = only("from torch import load as L\nL(f, weights_only=False)", "MLO321")
    assert finding.severity == Severity.HIGH
    assert finding.evidence["written"] == "L"


def test_torch_load_through_module_level_alias():
    (finding,) = only("import torch\nloader = torch.load\n\ndef get(f):\n    return loader(f)", "MLO321")
    assert finding.evidence["line"] == "5"


def test_torch_load_weights_only_variable_is_medium():
    (finding,) = only("import torch\ntorch.load(f, weights_only=flag)", "MLO321")
    assert finding.severity == Severity.MEDIUM
    assert finding.evidence["weights_only"] == "flag"


def test_torch_load_weights_only_true_is_clean():
    clean("import torch as T\nT.load(f, weights_only=True)\nT.serialization.load(f, **{'weights_only': True})")


def test_weights_only_fallback_pattern():
    found = findings(
        """
        import torch
        try:
            state = torch.load(path, weights_only=True)
        except Exception:
            state = torch.load(path, weights_only=False)
        """
    )
    assert [(f.rule.id, f.severity) for f in found] == [("MLO328", Severity.HIGH)]
    assert found[0].evidence["line"] == "6"


def test_safe_load_in_try_without_fallback_is_clean():
    clean(
        """
        import torch
        try:
            state = torch.load(path, weights_only=True)
        except Exception:
            raise SystemExit("refusing the checkpoint")
        """
    )


# ------------------------------------------------------------ MLO322 numpy allow_pickle


def test_numpy_allow_pickle_true_is_high():
    (finding,) = only("import numpy as np\nnp.load('a.npy', allow_pickle=True)", "MLO322")
    assert finding.severity == Severity.HIGH
    assert finding.evidence["callable"] == "numpy.load"


def test_numpy_load_default_and_false_are_clean():
    clean("from numpy import load\nload('a.npy')\nload('b.npy', allow_pickle=False)")


# ------------------------------------------------------------ MLO323 keras safe mode


@pytest.mark.parametrize(
    "source",
    [
        "import keras\nkeras.models.load_model('m.keras', safe_mode=False)",
        "from keras.saving import load_model as lm\nlm('m.keras', safe_mode=False)",
        "import tensorflow as tf\ntf.keras.models.load_model('m.keras', safe_mode=False)",
        "import keras\nkeras.config.enable_unsafe_deserialization()",
    ],
)
def test_keras_unsafe_mode_is_high(source):
    (finding,) = only(source, "MLO323")
    assert finding.severity == Severity.HIGH


def test_keras_safe_load_is_clean():
    clean("import keras\nkeras.models.load_model('m.keras')\nkeras.saving.load_model('m.keras', safe_mode=True)")


# ------------------------------------------------------------ MLO324 yaml


@pytest.mark.parametrize(
    ("source", "severity"),
    [
        ("import yaml\nyaml.unsafe_load(s)", Severity.HIGH),
        ("import yaml\nyaml.load(s, Loader=yaml.Loader)", Severity.HIGH),
        ("import yaml as y\ny.load(s, y.UnsafeLoader)", Severity.HIGH),
        ("from yaml import load, CLoader\nload(s, Loader=CLoader)", Severity.HIGH),
        ("import yaml\nyaml.load(s)", Severity.MEDIUM),
        ("import yaml\nyaml.load(s, Loader=pick_loader())", Severity.MEDIUM),
        ("import yaml\nyaml.full_load(s)", Severity.LOW),
        ("import yaml\nyaml.load(s, Loader=yaml.FullLoader)", Severity.LOW),
    ],
)
def test_yaml_unsafe_loads(source, severity):
    (finding,) = only(source, "MLO324")
    assert finding.severity == severity


def test_yaml_safe_loads_are_clean():
    clean(
        """
        import yaml
        from yaml import CSafeLoader
        yaml.safe_load(s)
        yaml.load(s, Loader=yaml.SafeLoader)
        yaml.load(s, Loader=CSafeLoader)
        yaml.load_all(s, yaml.BaseLoader)
        """
    )


# ------------------------------------------------------------ MLO325 mlflow


def test_mlflow_pickle_flavor_is_flagged_with_uri():
    (finding,) = only("import mlflow.sklearn as ms\nms.load_model('models:/churn/3')", "MLO325")
    assert finding.evidence["uri"] == "models:/churn/3"
    assert finding.evidence["callable"] == "mlflow.sklearn.load_model"
    (computed,) = only("import mlflow\nmlflow.pyfunc.load_model(model_uri=uri)", "MLO325")
    assert computed.evidence["uri"] == "(computed at run time)"


def test_mlflow_data_flavors_and_logging_are_clean():
    clean("import mlflow\nmlflow.onnx.load_model('models:/x/1')\nmlflow.sklearn.log_model(m, 'model')")


# ------------------------------------------------------------ MLO326 trust_remote_code


@pytest.mark.parametrize(
    ("source", "callable_name"),
    [
        ("from datasets import load_dataset as ld\nld('org/data', trust_remote_code=True)", "datasets.load_dataset"),
        (
            "import transformers as tr\ntr.AutoModel.from_pretrained('org/m', trust_remote_code=True)",
            "transformers.AutoModel.from_pretrained",
        ),
        (
            "from transformers import pipeline\npipeline('text-generation', 'org/m', trust_remote_code=True)",
            "transformers.pipeline",
        ),
        (
            "from transformers import AutoModel\nAutoModel.from_pretrained('m', **{'trust_remote_code': True})",
            "transformers.AutoModel.from_pretrained",
        ),
    ],
)
def test_trust_remote_code_is_high(source, callable_name):
    (finding,) = only(source, "MLO326")
    assert finding.severity == Severity.HIGH
    assert finding.evidence["callable"] == callable_name


def test_trust_remote_code_false_is_clean():
    clean("from datasets import load_dataset\nload_dataset('org/data', trust_remote_code=False)\nload_dataset('x')")


# ------------------------------------------------------------ facts for mloops audit: MLO329, MLO341, loaded paths


@pytest.mark.parametrize(
    ("source", "address"),
    [
        ("import mlflow\nmlflow.set_tracking_uri('http://mlflow.ml:5000')", "http://mlflow.ml:5000"),
        ("from mlflow import MlflowClient\nMlflowClient(tracking_uri='https://r.example')", "https://r.example"),
        ("import os\nos.environ['MLFLOW_TRACKING_URI'] = 'http://10.0.0.5:5000'", "http://10.0.0.5:5000"),
        ("MLFLOW_TRACKING_URI = 'http://mlflow:5000'", "http://mlflow:5000"),
    ],
)
def test_the_server_code_points_mlflow_at_is_a_fact(source, address):
    (fact,) = [f for f in facts(source) if f.rule.id == "MLO329"]
    assert fact.severity == Severity.INFO and fact.evidence == {
        "platform": "mlflow",
        "address": address,
        "line": fact.evidence["line"],
    }


def test_a_computed_or_schemeless_address_is_no_fact():
    assert [
        f
        for f in facts(
            "import mlflow, os\nmlflow.set_tracking_uri(os.environ['X'])\nmlflow.set_tracking_uri('databricks')"
        )
        if f.rule.id == "MLO329"
    ] == []


def test_the_dataset_code_loads_and_the_file_it_unpickles_are_named():
    source = (
        "import pickle\nfrom datasets import load_dataset\n"
        "d = load_dataset('data/reviews')\nm = pickle.load(open('m.pkl', 'rb'))"
    )
    found = {f.rule.id: f for f in facts(source)}
    assert found["MLO341"].evidence["path"] == "data/reviews" and found["MLO341"].severity == Severity.INFO
    assert found["MLO320"].evidence["path"] == "m.pkl"
    assert "path" not in facts("import joblib\nm = joblib.load(where)")[0].evidence


# ------------------------------------------------------------ MLO327 credentials


@pytest.mark.parametrize(
    "source",
    [
        "import os\nos.environ['MLFLOW_TRACKING_PASSWORD'] = 'S3cretPassw0rd!'",
        "from os import environ as env\nenv['HF_TOKEN'] = 'hf_AbCdEfGhIjKlMnOpQrStUv'",
        "import os\nos.environ.setdefault('WANDB_API_KEY', '0123456789abcdef0123')",
        "import os\nos.putenv('OPENAI_API_KEY', 'sk-proj-0123456789abcdef')",
        "import os\nos.environ.update({'AWS_SECRET_ACCESS_KEY': 'wJalrXUtnFEMI/K7MDENG/bPxRfiCY'})",
        "HUGGING_FACE_HUB_TOKEN = 'hf_AbCdEfGhIjKlMnOpQrStUv'",
        "mlflow_tracking_token: str = 'dapi0123456789abcdef'",
        "from huggingface_hub import login\nlogin(token='hf_AbCdEfGhIjKlMnOpQrStUv')",
        "import wandb as wb\nwb.login(key='0123456789abcdef0123')",
        "import boto3\nboto3.client('s3', aws_secret_access_key='wJalrXUtnFEMI/K7MDENG')",
    ],
)
def test_hard_coded_credentials_are_redacted(source):
    (finding,) = only(source, "MLO327")
    secret = source.rsplit("'", 2)[-2]
    assert finding.severity == Severity.HIGH
    assert finding.evidence["value"] == redact(secret)  # the same redaction as the secret search (MLO330)
    assert secret not in finding.message
    assert all(secret not in value for value in finding.evidence.values())


def test_credentials_from_the_environment_or_placeholders_are_clean():
    clean(
        """
        import os
        os.environ["HF_TOKEN"] = os.getenv("MY_TOKEN")
        HF_TOKEN = "<your token here>"
        WANDB_API_KEY = ""
        OPENAI_API_KEY = "sk-..."
        os.environ["MODEL_NAME"] = "bert-base-uncased-finetuned"
        from huggingface_hub import login
        login(token=os.environ["HF_TOKEN"])
        login()
        """
    )


# ------------------------------------------------------------ robustness


def test_syntax_errors_and_python2_are_not_findings():
    assert check_source("print 'hello'\nimport pickle; pickle.load(f)", Location("old.py")).findings == []
    assert check_source("def f(:\n", Location("bad.py")).findings == []
    assert check_source("x = 1\x00", Location("nul.py")).findings == []


def test_huge_source_is_a_scan_limit_not_a_crash():
    source = "x = 1\n" * (python_code.MAX_SOURCE_BYTES // 6 + 1)
    (finding,) = check_source(source, Location("big.py")).findings
    assert finding.rule.id == "MLO901"


def test_deeply_nested_and_long_chains_are_analyzed():
    cases = deep_sources()  # how fast: bench/unit_speed.py
    for source in cases:
        found = check_source(source, Location("deep.py")).findings
        assert all(f.rule.id != "MLO903" for f in found)
    assert len(check_source(cases[-1], Location("many.py")).findings) == 20_000  # the file's sink caps the listing


def test_many_nodes_hit_the_node_limit(monkeypatch):
    monkeypatch.setattr(python_code, "MAX_NODES", 100)
    (finding,) = check_source("x = [" + "1, " * 200 + "]\n", Location("wide.py")).findings
    assert finding.rule.id == "MLO901"


# ------------------------------------------------------------ script capabilities


def script_capabilities(source: str) -> dict[str, list[str]]:
    return capabilities_of(check_source(source, Location("script.py")).parsed)


def test_script_capabilities_lists_imports_and_dangerous_calls():
    source = textwrap.dedent(
        """
        import os, subprocess as sp
        import requests
        from pathlib import Path
        import urllib.request
        sp.run(["curl", "x"])
        os.system("id")
        requests.get("https://example.invalid")
        urllib.request.urlopen("https://example.invalid")
        open("out.txt", "w").write("x")
        open("in.txt").read()
        Path("x").write_text("y")
        eval(code)
        __import__("socket")
        """
    )
    caps = script_capabilities(source)
    assert caps["imports"] == ["os", "subprocess", "requests", "pathlib", "urllib.request"]
    assert caps["process"] == ["subprocess.run", "os.system"]
    assert caps["network"] == ["requests.get", "urllib.request.urlopen"]
    assert caps["filesystem"] == ["open(mode=w)", "*.write_text"]
    assert caps["code"] == ["eval", "__import__"]
    assert caps["unparsed"] == []


def test_script_capabilities_of_plain_and_broken_scripts():
    plain = script_capabilities("import json\nprint(json.dumps({}))\n")
    assert plain == {"imports": ["json"], "process": [], "network": [], "filesystem": [], "code": [], "unparsed": []}
    assert script_capabilities("def f(:")["unparsed"] == ["not valid Python 3"]


# ------------------------------------------------------------ the file analyzer


def _analyze(name: str, data: bytes):
    ctx = ScanContext(name, Limits(), default_policy(), dispatch)
    python_code.analyze(ctx, Item(io.BytesIO(data), Location(name), len(data), name, 0))
    return ctx.result


def test_detect_needs_a_py_name_and_text():
    assert python_code.detect(b"import torch\n", "train.py")
    assert python_code.detect("x = 'é'\n".encode(), "u.PY")
    assert python_code.detect("x = 'é'".encode()[:-2], "cut.py")  # a character cut by the end of the head
    assert not python_code.detect(b"import torch\n", "train.txt")
    assert not python_code.detect(b"\x80\x04\x95\x00\x00", "model.py")
    assert not python_code.detect(b"\xff\xfe\xfd\xfc" * 10, "x.py")


def test_analyze_records_and_reports():
    result = _analyze("train.py", b"import torch as T\nT.load('m.pt', weights_only=False)\n")
    assert [a.format for a in result.assets] == ["python-source"]
    (finding,) = result.findings
    assert finding.rule.id == "MLO321"
    assert str(finding.location) == "train.py @ byte 18"


def test_analyze_oversized_file_is_noted():
    result = _analyze("big.py", b"#" * (python_code.MAX_SOURCE_BYTES + 1))
    assert [(f.rule.id, f.severity) for f in result.findings] == [("MLO901", Severity.LOW)]  # generated code


def test_oversized_file_at_a_dataset_root_is_high(tmp_path):
    from corpus import dataset_folders

    from mloops import scan_path

    script = dataset_folders.hub_layout(tmp_path / "reviews", "#" * (python_code.MAX_SOURCE_BYTES + 1))
    found = {(f.rule.id, f.severity) for f in scan_path(str(script)).findings}
    assert ("MLO901", Severity.HIGH) in found  # a script load_dataset runs, left unchecked
    assert ("MLO340", Severity.HIGH) in found
