"""docker-compose.yml starts what the specification needs, under the names the suite reads.

No Docker engine runs here, so the file is read, not run.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from support.settings import _NAMES as SUITE_VARIABLES

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yml"


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_starts_postgres_redis_and_the_backend():
    services = compose()["services"]
    assert {"postgres", "redis", "backend"} <= set(services)
    backend = services["backend"]
    assert (REPO / backend["build"]["context"] / backend["build"]["dockerfile"]).exists()
    assert set(backend["depends_on"]) == {"postgres", "redis"}
    for name in ("postgres", "redis", "backend"):
        assert "healthcheck" in services[name], f"{name} has no healthcheck"


def test_the_backend_reads_the_variables_the_suite_reads():
    environment = compose()["services"]["backend"]["environment"]
    shared = {"DATABASE_URL", "REDIS_URL", "JWT_SECRET"}
    assert shared <= set(environment)
    assert shared <= set(SUITE_VARIABLES.values())
    backend_config = (REPO / "backend" / "config.py").read_text()
    for name in shared | {"BACKEND_MODE"}:
        assert f'"{name}"' in backend_config, f"backend/config.py does not read {name}"


def test_the_documented_command_points_the_suite_at_the_composed_services():
    text = COMPOSE.read_text()
    command = next(line for line in text.splitlines() if "TARGET_URL=" in line and "behave" in line)
    assigned = dict(re.findall(r"([A-Z_]+)=(\S+)", command))
    assert {"TARGET_URL", "DATABASE_URL", "REDIS_URL", "JWT_SECRET"} <= set(assigned)
    assert set(assigned) <= set(SUITE_VARIABLES.values())
    services = compose()["services"]
    published = {service: [str(p).rsplit(":", 1)[0].rsplit(":", 1)[-1] for p in spec.get("ports", [])]
                 for service, spec in services.items()}
    assert assigned["TARGET_URL"].rsplit(":", 1)[-1] in published["backend"]
    database = services["postgres"]["environment"]["POSTGRES_DB"]
    assert assigned["DATABASE_URL"].endswith(f"/{database}")
    assert re.search(r":(\d+)/", assigned["DATABASE_URL"])[1] in published["postgres"]
    assert re.search(r":(\d+)", assigned["REDIS_URL"].split("//")[1])[1] in published["redis"]


def test_the_compose_file_ships_no_usable_signing_secret():
    """JWT_SECRET must come from whoever runs it: a default written here is a secret everyone knows."""
    secret = compose()["services"]["backend"]["environment"]["JWT_SECRET"]
    required = re.fullmatch(r"\$\{JWT_SECRET:\?([^}]*)\}", secret)
    assert required, f"docker-compose.yml sets JWT_SECRET to {secret!r}; expected ${{JWT_SECRET:?<why>}}, no default"
    assert required[1].strip(), "the ${JWT_SECRET:?...} in docker-compose.yml gives no reason to show when it is unset"
    assert not re.search(r"JWT_SECRET:-", COMPOSE.read_text()), "docker-compose.yml still has a JWT_SECRET fallback"
