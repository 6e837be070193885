"""Kubernetes, Compose and Dockerfile checks: every rule positive and negative, secure fixtures clean,
hostile YAML bounded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from corpus.deployments import alias_bomb, huge_config_map
from corpus.scanning import scan_text

from mloops import scan_path
from mloops.core import Severity
from mloops.sniff import sniff

FIXTURES = Path(__file__).resolve().parent.parent / "corpus" / "manifests"
SECURE = [
    "kserve_secure.yaml",
    "deployment_hardened.yaml",
    "seldon_single_model.yaml",
    "kubeflow_protected.yaml",
    "compose_secure.yml",
    "Dockerfile.secure",
]


def scan(name: str):
    return scan_path(str(FIXTURES / name))


def found(report, rule_id: str) -> list:
    return [f for f in report.findings if f.rule.id == rule_id]


@pytest.mark.parametrize("name", SECURE)
def test_secure_fixtures_have_nothing_at_medium_or_above(name: str):
    report = scan(name)
    loud = [(f.rule.id, f.message) for f in report.findings if f.severity >= Severity.MEDIUM]
    assert loud == []
    assert report.files[0].assets[0].format in ("kubernetes-manifest", "compose", "dockerfile")


@pytest.mark.parametrize(
    ("name", "rule_id", "workload", "severity", "text"),
    [
        ("deployment_insecure.yaml", "MLO701", "Deployment/triton", Severity.CRITICAL, "runs privileged"),
        ("deployment_insecure.yaml", "MLO702", "Deployment/triton", Severity.CRITICAL, "hostPID"),
        ("deployment_insecure.yaml", "MLO703", "Deployment/triton", Severity.CRITICAL, "/var/run/docker.sock"),
        ("deployment_insecure.yaml", "MLO704", "Deployment/triton", Severity.CRITICAL, "/var/lib/kubelet/pods"),
        ("deployment_insecure.yaml", "MLO705", "Deployment/triton", Severity.CRITICAL, "NET_ADMIN, SYS_ADMIN"),
        ("deployment_insecure.yaml", "MLO706", "Deployment/triton", Severity.MEDIUM, "allowPrivilegeEscalation: true"),
        ("deployment_insecure.yaml", "MLO707", "Deployment/triton", Severity.MEDIUM, "runAsUser: 0"),
        ("deployment_insecure.yaml", "MLO708", "Deployment/triton", Severity.MEDIUM, "Unconfined"),
        ("deployment_insecure.yaml", "MLO709", "Deployment/triton", Severity.LOW, "writable root"),
        ("deployment_insecure.yaml", "MLO710", "Deployment/triton", Severity.MEDIUM, "service-account token"),
        ("deployment_insecure.yaml", "MLO712", "Deployment/triton", Severity.LOW, "NVIDIA_VISIBLE_DEVICES=all"),
        ("deployment_insecure.yaml", "MLO714", "Service/triton", Severity.HIGH, "LoadBalancer"),
        ("kserve_insecure.yaml", "MLO713", "InferenceService/torch-classifier", Severity.HIGH, "http://models"),
        ("kserve_insecure.yaml", "MLO715", "ServingRuntime/triton-multi", Severity.MEDIUM, "multiModel"),
        ("seldon_multi_model.yaml", "MLO715", "SeldonDeployment/fraud-ensemble", Severity.MEDIUM, "2 models"),
        ("seldon_multi_model.yaml", "MLO715", "Server/mlserver-shared", Severity.MEDIUM, "Seldon Core 2 Server"),
        ("kubeflow_exposed.yaml", "MLO714", "Gateway/kubeflow-gateway", Severity.HIGH, "any host"),
        ("kubeflow_exposed.yaml", "MLO714", "Ingress/ml-pipeline-ui", Severity.HIGH, "without an auth annotation"),
        ("kubeflow_exposed.yaml", "MLO714", "Service/istio-ingressgateway", Severity.HIGH, "LoadBalancer"),
        ("kubeflow_exposed.yaml", "MLO710", "Notebook/data-science", Severity.MEDIUM, "default-editor"),
        ("ray_exposed.yaml", "MLO714", "RayCluster/training", Severity.CRITICAL, "Jobs API"),
        ("ray_exposed.yaml", "MLO711", "ClusterRoleBinding/ray-admin", Severity.CRITICAL, "cluster-admin"),
        ("ray_exposed.yaml", "MLO705", "RayCluster/training", Severity.HIGH, "SYS_PTRACE"),
    ],
)
def test_insecure_manifests(name, rule_id, workload, severity, text):
    matches = [f for f in found(scan(name), rule_id) if f.location.members[-1] == workload and text in f.message]
    assert matches, [(f.location.members, f.message) for f in found(scan(name), rule_id)]
    assert matches[0].severity == severity
    assert matches[0].evidence.get("role", "") or rule_id == "MLO711"


@pytest.mark.parametrize(
    ("name", "rule_id"),
    [
        ("ray_internal.yaml", "MLO714"),
        ("ray_internal.yaml", "MLO711"),
        ("seldon_single_model.yaml", "MLO715"),
        ("kubeflow_protected.yaml", "MLO714"),
        ("kubeflow_protected.yaml", "MLO710"),
        ("kserve_secure.yaml", "MLO713"),
        ("deployment_hardened.yaml", "MLO710"),
        ("deployment_hardened.yaml", "MLO707"),
        ("deployment_hardened.yaml", "MLO709"),
        ("deployment_hardened.yaml", "MLO706"),
        ("deployment_hardened.yaml", "MLO712"),
        ("deployment_hardened.yaml", "MLO716"),
        ("job_defaults.yaml", "MLO710"),  # a plain training job: its token is not a model server's
        ("pod_privileged_user.yaml", "MLO706"),  # privileged already: reported as MLO701
        ("pod_privileged_user.yaml", "MLO707"),  # runAsUser 1000 at pod level
    ],
)
def test_negative_cases(name, rule_id):
    assert found(scan(name), rule_id) == []


def test_role_raises_severity(tmp_path: Path):
    pod = """
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
    - name: c
      image: {image}
      securityContext: {privileged: true}
"""
    plain = found(scan_text(tmp_path, "plain.yaml", pod.replace("{image}", "nginx:1.27")), "MLO701")
    server = found(scan_text(tmp_path, "server.yaml", pod.replace("{image}", "vllm/vllm-openai:v0.9.0")), "MLO701")
    assert plain[0].severity == Severity.HIGH and plain[0].evidence["role"] == "workload"
    assert server[0].severity == Severity.CRITICAL and server[0].evidence["role"] == "model server"


def test_compose_rules(tmp_path: Path):
    report = scan("compose_insecure.yml")
    rules = {(f.rule.id, f.location.members[-1]) for f in report.findings if f.severity >= Severity.LOW}
    for rule_id in ("MLO701", "MLO702", "MLO703", "MLO704", "MLO705", "MLO707", "MLO708", "MLO712", "MLO713"):
        assert (rule_id, "service/vllm") in rules, rule_id
    assert ("MLO714", "service/mlflow") in rules
    assert found(scan("compose_secure.yml"), "MLO714") == []


def test_dockerfile_rules():
    report = scan("Dockerfile.insecure")
    assert {f.rule.id for f in report.findings if f.severity > Severity.INFO} == {"MLO707", "MLO712", "MLO713"}
    assert found(report, "MLO713")[0].severity == Severity.HIGH  # a model archive over http
    assert found(scan("Dockerfile.secure"), "MLO707") == []


def test_detection_is_by_content(tmp_path: Path):
    manifest = (FIXTURES / "deployment_hardened.yaml").read_bytes()
    assert sniff(manifest, "anything.txt") == ["kubernetes-manifest"]
    assert sniff(b"FROM python:3.11\nRUN pip install x\n", "build.docker") == ["dockerfile"]
    assert sniff(b"services:\n  web:\n    image: nginx\n", "stack.yml") == ["compose"]
    assert sniff(b"name: ci\non: push\njobs: {}\n", "workflow.yml") == []  # other YAML is not a manifest
    assert sniff(b"# kind: note\napiVersion is described here\n", "notes.md") == []


# ------------------------------------------------------------ hostile input


# The speed of these scans is measured by bench/unit_speed.py.
def test_alias_bomb_is_a_finding_not_a_hang(tmp_path: Path):
    (finding,) = found(scan_text(tmp_path, "bomb.yaml", alias_bomb()), "MLO901")
    assert "aliases" in finding.message and finding.severity == Severity.HIGH


def test_self_referencing_and_huge_documents_are_bounded(tmp_path: Path):
    loop = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: loop}\ndata: &d\n  self: *d\n"
    assert "itself" in found(scan_text(tmp_path, "loop.yaml", loop), "MLO901")[0].message
    report = scan_text(tmp_path, "huge.yaml", huge_config_map())
    assert found(report, "MLO901")[0].severity == Severity.HIGH  # over the size limit: fail closed


def test_a_helm_template_is_a_low_note(tmp_path: Path):
    template = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n"
        "  labels: {{- toYaml .Values.labels | nindent 4 }}\n"
    )
    report = scan_text(tmp_path, "deployment.yaml", template)
    (note,) = found(report, "MLO716")
    assert note.severity == Severity.LOW


@pytest.mark.parametrize(
    ("kind", "api_version", "pod_path"),
    [
        ("PyTorchJob", "kubeflow.org/v1", ["pytorchReplicaSpecs", "Worker", "template", "spec"]),
        ("TFJob", "kubeflow.org/v1", ["tfReplicaSpecs", "Chief", "template", "spec"]),
        ("RayJob", "ray.io/v1", ["rayClusterSpec", "headGroupSpec", "template", "spec"]),
        ("CronJob", "batch/v1", ["jobTemplate", "spec", "template", "spec"]),
    ],
)
def test_pod_specs_of_every_kind_are_found_in_json_too(tmp_path: Path, kind, api_version, pod_path):
    import json

    pod = {"containers": [{"name": "c", "image": "python:3.11", "securityContext": {"privileged": True}}]}
    spec: dict = {}
    node = spec
    for step in pod_path[:-1]:
        node = node.setdefault(step, {})
    node[pod_path[-1]] = pod
    manifest = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}, "spec": spec}
    report = scan_text(tmp_path, "manifest.json", json.dumps(manifest))
    (finding,) = found(report, "MLO701")
    assert finding.location.members[-1] == f"{kind}/x"
    expected = "workload" if kind == "CronJob" else "pipeline runner"
    assert finding.evidence["role"] == expected


def test_argo_workflow_templates_are_containers(tmp_path: Path):
    workflow = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: train-}
spec:
  entrypoint: train
  templates:
    - name: train
      container:
        image: pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime
        securityContext: {capabilities: {add: [SYS_ADMIN]}}
"""
    (finding,) = found(scan_text(tmp_path, "wf.yaml", workflow), "MLO705")
    assert finding.evidence["role"] == "pipeline runner" and "SYS_ADMIN" in finding.message


def test_virtual_service_for_any_host_to_an_ml_service(tmp_path: Path):
    service = """
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: mlflow}
spec:
  hosts: ["*"]
  gateways: [kubeflow/kubeflow-gateway]
  http:
    - route:
        - destination: {host: DESTINATION.mlops.svc.cluster.local, port: {number: 5000}}
"""
    (finding,) = found(scan_text(tmp_path, "vs.yaml", service.replace("DESTINATION", "mlflow")), "MLO714")
    assert finding.severity == Severity.HIGH and "mlflow.mlops" in finding.message
    assert found(scan_text(tmp_path, "web.yaml", service.replace("DESTINATION", "frontend")), "MLO714") == []
    policy = "\n---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: require-jwt}\n"
    (guarded,) = found(scan_text(tmp_path, "vs2.yaml", service.replace("DESTINATION", "mlflow") + policy), "MLO714")
    assert guarded.severity == Severity.LOW


# ------------------------------------------------------------ platforms started open


@pytest.mark.parametrize(
    ("name", "text", "severity", "platform"),
    [
        (
            "Dockerfile",
            'FROM jupyter/base-notebook\nUSER jovyan\nCMD ["start-notebook.sh", "--ServerApp.token=", '
            '"--ServerApp.password="]\n',
            Severity.HIGH,
            "Jupyter",
        ),
        (
            "Dockerfile",
            "FROM python:3.11\nRUN pip install jupyterlab\nUSER 1000\n"
            'ENTRYPOINT ["jupyter", "lab"]\nCMD jupyter lab --ip=0.0.0.0 --allow-root --IdentityProvider.token=\'\'\n',
            Severity.CRITICAL,
            "Jupyter",
        ),
        (
            "docker-compose.yml",
            "services:\n  tracking:\n    image: ghcr.io/mlflow/mlflow\n    command: mlflow server -h 0.0.0.0\n",
            Severity.HIGH,
            "MLflow",
        ),
        (
            "compose.yaml",
            "services:\n  head:\n    image: rayproject/ray\n"
            "    command: [bash, -c, 'ray start --head --dashboard-host 0.0.0.0 --block']\n",
            Severity.CRITICAL,
            "Ray",
        ),
        (
            "tb.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: tb\nspec:\n  containers:\n  - name: tb\n"
            "    image: tensorflow/tensorflow\n    command: [tensorboard]\n    args: [--logdir, /logs, --bind_all]\n",
            Severity.MEDIUM,
            "TensorBoard",
        ),
    ],
)
def test_platforms_started_with_authentication_off(tmp_path: Path, name, text, severity, platform):
    (finding,) = found(scan_text(tmp_path, name, text), "MLO719")
    assert finding.severity == severity and finding.evidence["platform"] == platform


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("Dockerfile", 'FROM jupyter/base-notebook\nUSER jovyan\nCMD ["start-notebook.sh", "--ip=0.0.0.0"]\n'),
        (
            "Dockerfile",
            "FROM python:3.11\nUSER 1000\nCMD jupyter lab --ServerApp.token= --ServerApp.password=sha1:ab\n",
        ),
        (
            "docker-compose.yml",
            "services:\n  t:\n    image: ghcr.io/mlflow/mlflow\n    command: mlflow server --host 127.0.0.1\n",
        ),
        (
            "docker-compose.yml",
            "services:\n  t:\n    image: ghcr.io/mlflow/mlflow\n"
            "    command: mlflow server --host 0.0.0.0 --app-name basic-auth\n",
        ),
    ],
)
def test_platforms_started_with_their_protection_are_quiet(tmp_path: Path, name, text):
    assert found(scan_text(tmp_path, name, text), "MLO719") == []


def test_credentials_written_into_images_and_compose_files(tmp_path: Path):
    dockerfile = "FROM python:3.11\nENV HF_TOKEN=hf_x LOG_LEVEL=info\nARG WANDB_API_KEY=abc\nARG PIP_TOKEN\nUSER 1000\n"
    (finding,) = found(scan_text(tmp_path, "Dockerfile", dockerfile), "MLO718")
    assert finding.severity == Severity.HIGH
    assert "ENV HF_TOKEN" in finding.message and "ARG WANDB_API_KEY" in finding.message
    assert "hf_x" not in finding.message and "PIP_TOKEN" not in finding.message
    compose = (
        "services:\n  app:\n    image: python:3.11\n    environment:\n      OPENAI_API_KEY: sk-abc\n"
        "      HF_TOKEN: ${HF_TOKEN}\n      DB_PASSWORD: $PASSWORD\n"
    )
    (finding,) = found(scan_text(tmp_path, "docker-compose.yml", compose), "MLO718")
    assert finding.severity == Severity.MEDIUM and finding.evidence["names"] == "OPENAI_API_KEY"


POD_WITH_ENV = """apiVersion: apps/v1
kind: Deployment
metadata: {{name: app}}
spec:
  template:
    spec:
      containers:
      - name: app
        image: {image}
        env:
{env}
"""


def test_variables_that_name_where_a_credential_is_are_not_credentials(tmp_path: Path):
    # KServe's controller sets SECRET_NAME to the name of its webhook certificate's Secret (a reference).
    env = (
        "        - {name: SECRET_NAME, value: kserve-webhook-server-cert}\n"
        "        - {name: TOKEN_FILE, value: /var/run/secrets/token}\n"
        "        - {name: CONTROL_PLANE_CLIENT_TLS_SECRET_NAME, value: seldon-controlplane-client}\n"
    )
    text = POD_WITH_ENV.format(image="kserve/kserve-controller:v0.14", env=env)
    assert found(scan_text(tmp_path, "m.yaml", text), "MLO718") == []
    leaked = env + "        - {name: HF_TOKEN, value: hf_abc}\n"
    (finding,) = found(scan_text(tmp_path, "n.yaml", POD_WITH_ENV.format(image="python:3.11", env=leaked)), "MLO718")
    assert finding.evidence["names"] == "HF_TOKEN"


def test_web_apps_that_create_notebooks_are_control_plane_not_notebooks(tmp_path: Path):
    # Kubeflow's jupyter-web-app spawns notebooks but runs no user's code: no notebook role, so its token is
    # not reported (a notebook's would be MEDIUM).
    image = "public.ecr.aws/j1r0q0g6/notebooks/jupyter-web-app"
    report = scan_text(tmp_path, "m.yaml", POD_WITH_ENV.format(image=image, env="        - {name: A, value: b}"))
    assert found(report, "MLO710") == []
    assert {f.evidence["role"] for f in found(report, "MLO709")} == {"workload"}
    notebook = POD_WITH_ENV.format(image="kubeflownotebookswg/jupyter-scipy", env="        - {name: A, value: b}")
    assert found(scan_text(tmp_path, "n.yaml", notebook), "MLO710")[0].severity == Severity.MEDIUM
    # ko builds Go programs of the platform's own source: KServe's localmodel node agent serves no model.
    agent = POD_WITH_ENV.format(
        image="ko://github.com/kserve/kserve/cmd/localmodelnode", env="        - {name: A, value: b}"
    )
    assert found(scan_text(tmp_path, "o.yaml", agent), "MLO710") == []


KUSTOMIZATION = """apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [deployment.yaml]
secretGenerator:
- name: oauth2-proxy
  literals:
  - client-id=kubeflow-oidc-authservice
  - cookie-secret=7d16fee92f8d11b8940b081b3f8b8acb
- name: from-file
  files: [token.txt]
configMapGenerator:
- name: parameters
  literals:
  - FORCE_HTTPS=false
  - ENABLE_M2M_TOKENS=true
  - ADMIN_PASSWORD=changeme
"""


def test_kustomize_secrets_generated_from_written_values_are_high(tmp_path: Path):
    # Kubeflow's oauth2-proxy kustomization ships its cookie secret: every install keeping it shares it.
    findings = {
        f.evidence["generator"]: f for f in found(scan_text(tmp_path, "kustomization.yaml", KUSTOMIZATION), "MLO718")
    }
    assert set(findings) == {"oauth2-proxy", "parameters"}
    assert findings["oauth2-proxy"].severity == Severity.HIGH
    assert findings["oauth2-proxy"].evidence["names"] == "client-id, cookie-secret"
    assert (
        findings["parameters"].severity == Severity.MEDIUM
        and findings["parameters"].evidence["names"] == "ADMIN_PASSWORD"
    )
    assert "7d16fee9" not in findings["oauth2-proxy"].message


RBAC = """apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {name}
rules:
- apiGroups: {groups}
  resources: ["*"]
  verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {name}-binding
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {name}
subjects:
- kind: ServiceAccount
  name: platform-sa
  namespace: ml
"""


@pytest.mark.parametrize(
    ("groups", "severity"),
    [
        ('["kubeflow.org", "serving.kserve.io"]', Severity.MEDIUM),  # the platform's own resources only
        ('["*"]', Severity.HIGH),
        ('[""]', Severity.HIGH),  # the core group: secrets, pods
        ('["apps"]', Severity.HIGH),  # creates pods through Deployments
    ],
)
def test_rbac_wildcards_count_for_the_api_groups_they_name(tmp_path: Path, groups: str, severity: Severity):
    (finding,) = found(scan_text(tmp_path, "rbac.yaml", RBAC.format(name="edit-all", groups=groups)), "MLO711")
    assert finding.severity == severity
    assert ("cluster-wide role" in finding.message) == (severity == Severity.HIGH)


def test_platform_controllers_take_no_ml_role_from_their_image(tmp_path: Path):
    manifest = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: kserve-controller-manager
spec:
  template:
    spec:
      containers:
      - name: manager
        image: kserve/kserve-controller:v0.14.0
      - name: kube-rbac-proxy
        image: quay.io/brancz/kube-rbac-proxy:v0.18.0
"""
    report = scan_text(tmp_path, "controller.yaml", manifest)
    assert {f.evidence.get("role") for f in report.findings if "role" in f.evidence} <= {"workload"}
    assert [f.rule.id for f in report.findings if f.severity >= Severity.MEDIUM] == []


GATEWAY = """apiVersion: networking.istio.io/v1beta1
kind: Gateway
metadata:
  name: kubeflow-gateway
  namespace: kubeflow
spec:
  selector:
    istio: {selector}
  servers:
  - hosts: ["*"]
    port: {{number: 80, name: http, protocol: HTTP}}
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: centraldashboard
  namespace: kubeflow
spec:
  gateways: [kubeflow-gateway]
  hosts: ["*"]
  http:
  - route:
    - destination:
        host: centraldashboard.kubeflow.svc.cluster.local
"""

AUTHORIZATION_POLICY = """apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata:
  name: istio-ingressgateway-oauth2-proxy
  namespace: istio-system
spec:
  action: CUSTOM
  provider:
    name: oauth2-proxy
  selector:
    matchLabels:
      app: istio-ingressgateway
  rules:
  - {}
"""


def _exposure(report) -> list[Severity]:
    return sorted(f.severity for f in report.findings if f.rule.id == "MLO714")


def test_an_authorization_policy_in_a_sibling_file_protects_the_gateway(tmp_path: Path):
    (tmp_path / "gateway.yaml").write_text(GATEWAY.format(selector="ingressgateway"))
    assert _exposure(scan_path(str(tmp_path))) == [Severity.HIGH, Severity.HIGH]  # alone: open
    (tmp_path / "oauth2-proxy").mkdir()
    (tmp_path / "oauth2-proxy" / "authorizationpolicy.yaml").write_text(AUTHORIZATION_POLICY)
    assert _exposure(scan_path(str(tmp_path))) == [Severity.LOW, Severity.LOW]  # the tree has the auth layer
    assert _exposure(scan_path(str(tmp_path / "gateway.yaml"))) == [Severity.HIGH, Severity.HIGH]


def test_data_json_that_merely_mentions_a_policy_is_no_auth_layer(tmp_path: Path):
    # Only files that start like a manifest or an Envoy config are searched (tokenizer.json is not read twice).
    (tmp_path / "gateway.yaml").write_text(GATEWAY.format(selector="ingressgateway"))
    vocabulary = {f"token{n}": n for n in range(10_000)} | {"kind: AuthorizationPolicy": 10_000}
    (tmp_path / "vocab.json").write_text(json.dumps(vocabulary))
    assert _exposure(scan_path(str(tmp_path))) == [Severity.HIGH, Severity.HIGH]


def test_a_gateway_served_by_the_in_cluster_gateway_is_no_exposure(tmp_path: Path):
    # The Gateway is served by the cluster-local gateway, and the VirtualService is bound to it only.
    report = scan_text(tmp_path, "gateway.yaml", GATEWAY.format(selector="cluster-local-gateway"))
    assert _exposure(report) == []


def test_a_virtual_service_without_gateways_routes_mesh_traffic_only(tmp_path: Path):
    text = GATEWAY.format(selector="ingressgateway").replace("  gateways: [kubeflow-gateway]\n", "")
    assert _exposure(scan_text(tmp_path, "gateway.yaml", text)) == [Severity.HIGH]  # the Gateway only


PROXIED = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: mlflow
spec:
  selector:
    matchLabels: {{app: mlflow}}
  template:
    metadata:
      labels: {{app: mlflow}}
    spec:
      containers:
      - name: mlflow
        image: ghcr.io/mlflow/mlflow:v2.16.0
        ports: [{{containerPort: 5000}}]
      - name: oauth2-proxy
        image: quay.io/oauth2-proxy/oauth2-proxy:v7.6.0
        ports: [{{containerPort: 4180, name: proxy}}]
        env:
        - name: OAUTH2_PROXY_COOKIE_SECRET
          value: {cookie}
        - name: OAUTH2_PROXY_CLIENT_SECRET
          valueFrom: {{secretKeyRef: {{name: oauth, key: secret}}}}
---
apiVersion: v1
kind: Service
metadata:
  name: mlflow
spec:
  type: LoadBalancer
  selector: {{app: mlflow}}
  ports:
  - port: 80
    targetPort: {target}
"""


def test_a_service_in_front_of_an_authenticating_proxy_sidecar_is_not_open(tmp_path: Path):
    proxied = scan_text(tmp_path, "mlflow.yaml", PROXIED.format(target="proxy", cookie="''"))
    assert found(proxied, "MLO714") == []
    direct = scan_text(tmp_path, "mlflow.yaml", PROXIED.format(target=5000, cookie="''"))
    assert [f.severity for f in found(direct, "MLO714")] == [Severity.HIGH]  # past the proxy, to MLflow


def test_a_secret_written_into_the_proxy_environment_is_high(tmp_path: Path):
    report = scan_text(tmp_path, "mlflow.yaml", PROXIED.format(target="proxy", cookie="c2VjcmV0LWNvb2tpZS1zZWNyZXQ="))
    (finding,) = found(report, "MLO718")
    assert finding.severity == Severity.HIGH and finding.evidence["names"] == "OAUTH2_PROXY_COOKIE_SECRET"


DEX_CONFIG = """apiVersion: v1
kind: ConfigMap
metadata: {{name: dex}}
data:
  config.yaml: |
    issuer: http://dex.auth.svc.cluster.local:5556/dex
    enablePasswordDB: {enabled}
    staticPasswords:
    - email: user@example.com
      hash: $2y$12$4K/VkmDd1q1Orb3xAt82zu8gk7Ad6ReFR4LCP9UeYE90NLiN9Df72
      username: user
"""


def test_dex_static_password_users_in_a_manifest_are_shared_logins(tmp_path: Path):
    # Kubeflow's Dex ships user@example.com with a published password: every install keeping it shares it.
    (finding,) = found(scan_text(tmp_path, "dex.yaml", DEX_CONFIG.format(enabled="true")), "MLO718")
    assert finding.severity == Severity.MEDIUM and finding.evidence["names"] == "user@example.com"
    assert found(scan_text(tmp_path, "off.yaml", DEX_CONFIG.format(enabled="false")), "MLO718") == []
