"""Golden tests of the pure renderers, with core kinds validated by kubernetes-validate."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest
from shepherd.api import DEFAULT_AGENT_IMAGE
from shepherd.render import autoscaling, monitoring, redis, render_all, service_env, workload
from shepherd.render.all import CHILD_KINDS
from shepherd.render.common import OWNER_LABEL

from .conftest import load_case, make_resource

CASES = ["minimal", "full", "keda-external"]
K8S_VERSION = "1.36.0"
CONTENT = monitoring.MonitoringContent(
    rule_groups=[{"name": "demo", "rules": [{"record": "demo:up", "expr": "up"}]}],
    dashboard_json=json.dumps({"title": "demo", "uid": "demo"}),
)


def _render(module, resource):
    if module is monitoring:
        return module.render(resource, CONTENT)
    return module.render(resource)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(
    "module", [workload, redis, autoscaling, monitoring], ids=lambda m: m.__name__.split(".")[-1]
)
def test_golden(case, module, golden):
    resource = make_resource(load_case(case))
    golden.check(f"{module.__name__.split('.')[-1]}-{case}", _render(module, resource))


@pytest.mark.parametrize("case", CASES)
def test_core_objects_validate(case):
    resource = make_resource(load_case(case))
    for obj in render_all(resource, CONTENT).all:
        if obj["apiVersion"].startswith(("monitoring.coreos.com", "keda.sh")):
            continue  # third-party CRDs: validated by the real apiserver in the integration tests
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@pytest.mark.parametrize("case", CASES)
def test_every_child_is_labelled_and_owned(case):
    resource = make_resource(load_case(case))
    children = render_all(resource, CONTENT).all
    kinds = {(k.api_version, k.kind) for k in CHILD_KINDS}
    for obj in children:
        meta = obj["metadata"]
        assert (obj["apiVersion"], obj["kind"]) in kinds
        assert meta["namespace"] == "team-a"
        assert meta["labels"][OWNER_LABEL] == "demo"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "shepherd"
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "shepherd.dev/v1alpha1",
                "kind": "AgentDeployment",
                "name": "demo",
                "uid": "00000000-0000-4000-8000-000000000001",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    names = [(o["kind"], o["metadata"]["name"]) for o in children]
    assert len(names) == len(set(names))


def test_default_image_and_command():
    dep = workload.deployment(make_resource({}))
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == DEFAULT_AGENT_IMAGE
    assert container["command"] == ["agent-service"]
    assert container["args"] == ["--host", "0.0.0.0", "--port", "8000"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert dep["spec"]["replicas"] == 2


def test_autoscaled_deployment_leaves_replicas_to_the_autoscaler():
    dep = workload.deployment(make_resource(load_case("full")))
    assert "replicas" not in dep["spec"]


def test_native_sidecars():
    init = workload.deployment(make_resource(load_case("full")))["spec"]["template"]["spec"]["initContainers"]
    assert [c["name"] for c in init] == ["otel-collector", "pii-proxy"]
    assert all(c["restartPolicy"] == "Always" for c in init)


def test_settings_reach_the_container():
    resource = make_resource(load_case("full"))
    data = service_env.config_data(resource)
    assert data["AGENT_GRAPH"] == "team_agents.support:graph"
    assert data["AGENT_GRAPH_ID"] == "support"
    assert data["REDIS_KEY_PREFIX"] == "shepherd:team-a:demo"
    assert "REDIS_URL" not in data  # it holds a password: in the container env, expanded by the kubelet
    assert (data["STORE_MAX_VALUE_BYTES"], data["STORE_DEFAULT_TTL_MINUTES"]) == ("65536", "1440")
    assert (data["STORE_TTL_REFRESH_ON_READ"], data["PROTOCOL_MCP"]) == ("false", "false")
    assert data["PROTOCOL_A2A"] == "false"
    chain = json.loads(data["LLM_CHAIN"])
    assert [(e["provider"], e["model"]) for e in chain] == [
        ("anthropic", "claude-sonnet-4-5"),
        ("anthropic", "claude-haiku-4-5"),
        ("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ("vertex", "claude-sonnet-4-5@20250929"),
        ("openai", "llama-3.3-70b"),
    ]
    assert chain[3]["project_id"] == "team-agents"
    assert chain[4]["pricing"] == {"input": 0.2, "output": 0.4}
    assert "api_key" not in json.dumps(chain), "secrets never reach the ConfigMap"
    assert data["LLM_TIMEOUT_SECONDS"] == "45.5"
    assert (data["LLM_CONTEXT_OVERFLOW"], data["LLM_CACHE_TTL_SECONDS"]) == ("refuse", "600")
    assert data["LLM_DEGRADED_REPLY"].startswith("Support is busy")
    assert data["OTEL_EXPORTER_OTLP_ENDPOINT"] == service_env.COLLECTOR_LOCAL_ENDPOINT
    env = {e["name"]: e for e in service_env.container_env(resource)}
    secret = {
        name: e["valueFrom"]["secretKeyRef"] for name, e in env.items() if name.startswith("LLM_CHAIN_")
    }
    assert secret == {
        "LLM_CHAIN_0_API_KEY": {"name": "anthropic", "key": "api-key"},
        "LLM_CHAIN_1_API_KEY": {"name": "anthropic", "key": "api-key"},  # the fallback without provider
        "LLM_CHAIN_2_AWS_ACCESS_KEY_ID": {"name": "aws", "key": "access-key-id"},
        "LLM_CHAIN_2_AWS_SECRET_ACCESS_KEY": {"name": "aws", "key": "secret-access-key"},
        "LLM_CHAIN_3_GOOGLE_CREDENTIALS": {"name": "gcp", "key": "key.json"},
    }
    assert all("value" not in env[name] for name in secret)
    paths = [path for path, _ in service_env.referenced_secrets(resource)]
    assert "spec.model.fallbacks[1].awsCredentials.secretAccessKeySecretRef" in paths
    assert "spec.model.fallbacks[2].googleCredentialsSecretRef" in paths
    assert env["SHEPHERD_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "demo-redis-auth",
        "key": "agent",
    }
    names = list(env)
    assert names.index("SHEPHERD_REDIS_PASSWORD") < names.index("REDIS_URL")  # expansion needs the order
    assert env["REDIS_URL"]["value"] == (
        "rediss://agent:$(SHEPHERD_REDIS_PASSWORD)@demo-redis.team-a.svc:6379/0"
        "?ssl_ca_certs=/etc/shepherd/redis-tls/ca.crt"  # TLS on: the CA mounted from the cert Secret
    )


def test_retention_and_the_admin_role_reach_the_service():
    data = service_env.config_data(make_resource(load_case("full")))
    assert data["THREAD_TTL_SECONDS"] == str(30 * 86400)
    assert data["THREAD_TTL_STRATEGY"] == "keep_latest"
    assert data["RUN_RECORD_TTL_SECONDS"] == str(7 * 86400)
    assert data["RETENTION_SWEEP_INTERVAL_SECONDS"] == "120"
    assert (data["RUN_EVENT_TTL_SECONDS"], data["STATELESS_RUN_TTL_SECONDS"]) == ("7200", "1800")
    assert data["AUTH_ADMIN_ROLE"] == "platform-admin"
    minimal = service_env.config_data(make_resource(load_case("minimal")))
    assert "THREAD_TTL_SECONDS" not in minimal
    assert "RUN_RECORD_TTL_SECONDS" not in minimal


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, {}),  # the image decides (the service's default, or an `agent-service build` AGENT_CONFIG)
        ({"config": "/app/langgraph.json"}, {"AGENT_CONFIG": "/app/langgraph.json"}),
        (  # spec.graph set as well overrides the file's graphs (its http.app, auth and env stay)
            {"config": "/app/langgraph.json", "graph": "team.agents:graph"},
            {"AGENT_CONFIG": "/app/langgraph.json", "AGENT_GRAPH": "team.agents:graph"},
        ),
    ],
)
def test_graph_or_langgraph_json(spec, expected):
    data = service_env.config_data(make_resource(spec))
    assert {k: data[k] for k in ("AGENT_GRAPH", "AGENT_CONFIG") if k in data} == expected
    assert data["TERMINATION_MESSAGE_PATH"] == "/dev/termination-log"


def test_external_redis_secret_url_and_no_statefulset():
    resource = make_resource(load_case("keda-external"))
    assert redis.render(resource) == []
    assert "REDIS_URL" not in service_env.config_data(resource)
    env = {e["name"]: e for e in service_env.container_env(resource)}
    assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"]["name"] == "redis-url"


def test_hpa_or_keda_never_both():
    assert [o["kind"] for o in autoscaling.render(make_resource(load_case("full")))] == [
        "HorizontalPodAutoscaler"
    ]
    assert [o["kind"] for o in autoscaling.render(make_resource(load_case("keda-external")))] == [
        "ScaledObject"
    ]
    assert autoscaling.render(make_resource({})) == []


def test_config_change_rolls_pods():
    a = workload.deployment(make_resource({}))
    b = workload.deployment(make_resource({"circuitBreaker": {"failureThreshold": 9}}))
    key = workload.CONFIG_HASH_ANNOTATION
    assert (
        a["spec"]["template"]["metadata"]["annotations"][key]
        != b["spec"]["template"]["metadata"]["annotations"][key]
    )


def test_renderers_are_pure():
    resource = make_resource(load_case("full"))
    assert render_all(resource, CONTENT) == render_all(resource, CONTENT)


@pytest.mark.parametrize("case", CASES)
def test_every_rendered_setting_is_one_the_service_reads(case):
    """The contract with agent_service.settings: no setting the service would silently ignore."""
    from agent_service.settings import CHAIN_SECRETS, Settings

    known = (
        {name.upper() for name in Settings.model_fields}
        | service_env.OTEL_SDK_VARIABLES
        | service_env.EXPANSION_ONLY
    )
    resource = make_resource(load_case(case))
    known |= {
        service_env.LLM_CHAIN_SECRET.format(index=i, field=f.upper())
        for i in range(len(resource.spec.model.chain()))
        for f in CHAIN_SECRETS
    }
    user = {e.name for e in resource.spec.env}
    rendered = set(service_env.config_data(resource)) | {
        e["name"] for e in service_env.container_env(resource)
    }
    assert rendered - user - known == set()


@pytest.mark.parametrize("case", CASES)
def test_every_variable_shepherd_sets_is_refused_in_spec_env(case):
    """The CRD's refusal list is ``SPEC_FIELDS``: a rendered variable missing there could be
    silently overridden by ``spec.env``."""
    resource = make_resource(load_case(case))
    user = {e.name for e in resource.spec.env}
    rendered = set(service_env.config_data(resource)) | {
        e["name"] for e in service_env.container_env(resource)
    }
    assert rendered - user <= set(service_env.SPEC_FIELDS)
    assert not user & set(service_env.SPEC_FIELDS)


def test_rendered_config_is_accepted_by_the_service(monkeypatch):
    """The service validates its settings at start-up; the rendered ones, read from the environment
    as in the Pod (Secrets resolved to placeholder values), must pass."""
    from agent_service.llm import llm_routes
    from agent_service.settings import Settings

    resource = make_resource(load_case("full"))
    for name, value in service_env.config_data(resource).items():
        monkeypatch.setenv(name, value)
    for variable in service_env.container_env(resource):
        monkeypatch.setenv(variable["name"], variable.get("value", f"secret-of-{variable['name']}"))
    monkeypatch.setenv("LLM_CHAIN_3_GOOGLE_CREDENTIALS", '{"type": "service_account"}')
    settings = Settings()
    assert (settings.store_default_ttl_minutes, settings.store_ttl_refresh_on_read) == (1440, False)
    assert (settings.protocol_mcp, settings.protocol_a2a) == (False, False)
    routes = llm_routes(settings)
    assert [r.circuit for r in routes][2:] == [
        "bedrock:us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "vertex:claude-sonnet-4-5@20250929",
        "openai:llama-3.3-70b",
    ]
    assert routes[1].credentials.api_key == "secret-of-LLM_CHAIN_1_API_KEY"
    assert routes[2].credentials.aws_secret_access_key == "secret-of-LLM_CHAIN_2_AWS_SECRET_ACCESS_KEY"
    assert routes[4].price is not None
    assert routes[4].max_input_tokens == 128000
    assert settings.rate_limit_tenant_per_minute == 600
    assert settings.drain_grace_seconds == 110
