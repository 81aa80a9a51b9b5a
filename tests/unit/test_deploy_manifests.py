"""The Kubernetes manifests: valid against the Kubernetes schemas, and consistent
with what the worker and the CLI actually do."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from typer.main import get_command

from tether.cli import app

MANIFESTS = sorted((Path(__file__).resolve().parents[2] / "deploy" / "kubernetes").glob("*.yaml"))


def resources() -> list[dict]:
    docs = []
    for path in MANIFESTS:
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def by_kind(kind: str, name: str) -> dict:
    found = [r for r in resources() if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}"
    return found[0]


def env_of(container: dict) -> dict[str, str | None]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_valid_against_kubernetes_schemas(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        if doc:
            kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_workers_drain_within_the_grace_period_and_report_readiness() -> None:
    spec = by_kind("Deployment", "tether-worker")["spec"]["template"]["spec"]
    (worker,) = spec["containers"]
    env = env_of(worker)
    assert float(env["TETHER_DRAIN_S"]) + 10 <= spec["terminationGracePeriodSeconds"]
    assert worker["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert worker["lifecycle"]["preStop"]["exec"]["command"][:3] == ["tether", "drain", "--worker"]
    assert "--wait" in worker["lifecycle"]["preStop"]["exec"]["command"]
    assert worker["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert "TETHER_WORKER_TOKEN" in env and env["TETHER_WORKER_TOKEN"] is None  # from a Secret


def test_headless_service_is_what_the_studio_resolves() -> None:
    service = by_kind("Service", "tether-workers")
    assert service["spec"]["clusterIP"] == "None"
    studio = by_kind("Deployment", "tether-studio")["spec"]["template"]["spec"]["containers"][0]
    url = env_of(studio)["TETHER_WORKER_URL"]
    assert url.startswith(f"dns+http://{service['metadata']['name']}.tether.svc")
    assert url.endswith(f":{service['spec']['ports'][0]['port']}")
    budget = by_kind("PodDisruptionBudget", "tether-worker")
    selector = budget["spec"]["selector"]["matchLabels"]
    assert selector == service["spec"]["selector"]


def test_every_cli_flag_in_the_manifests_exists() -> None:
    cli = get_command(app)
    for doc in resources():
        if doc["kind"] != "Deployment":
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            commands = [container.get("args", [])]
            hook = container.get("lifecycle", {}).get("preStop", {}).get("exec", {})
            if hook:
                commands.append(hook["command"][1:])  # drop the "tether" program name
            for args in commands:
                command = cli.commands[args[0]]  # type: ignore[attr-defined]
                known = {opt for p in command.params for opt in p.opts}
                flags = [a for a in args[1:] if a.startswith("--")]
                assert set(flags) <= known, (args, set(flags) - known)
