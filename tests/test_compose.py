"""Static checks of the container set-up (no Docker engine needed).

Parses docker-compose.yml, the Dockerfile and pyproject.toml and checks the facts the
deployment relies on: which service runs by default, what the GPU profile builds and
reserves, that persistent paths sit on declared volumes, and that the CUDA jax pin in the
image matches the project's own jax requirement.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PYPROJECT = ROOT / "pyproject.toml"
MAKEFILE = ROOT / "Makefile"

CPU_SERVICE = "neuroglass"
GPU_SERVICE = "neuroglass-gpu"
PG_APP = "neuroglass-postgres"
PG_SERVICE = "postgres"
RAY_APP = "neuroglass-ray"
RAY_HEAD = "ray-head"
RAY_WORKER = "ray-worker"


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def compose() -> dict:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict), "docker-compose.yml must be a mapping"
    return data


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    services = compose.get("services")
    assert isinstance(services, dict) and services, "docker-compose.yml has no services"
    return services


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return parse_dockerfile(DOCKERFILE.read_text())


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continuations joined."""
    instructions: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, args = current.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        current = ""
    if current:
        keyword, _, args = current.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    return instructions


def args_of(instructions: list[tuple[str, str]], keyword: str) -> list[str]:
    return [args for kw, args in instructions if kw == keyword]


def command_words(command: object) -> list[str]:
    """A compose/Dockerfile command in either exec (list/JSON) or shell (string) form, as words."""
    if isinstance(command, list):
        return [str(word) for word in command]
    text = str(command).strip()
    if text.startswith("["):
        return [str(word) for word in json.loads(text)]
    return shlex.split(text)


def build_of(service: dict) -> tuple[Path, str, dict[str, str]]:
    """(context dir, dockerfile name, build args) of a service's `build:`."""
    build = service.get("build")
    assert build is not None, "service has no build section"
    if isinstance(build, str):
        return (ROOT / build).resolve(), "Dockerfile", {}
    context = (ROOT / build.get("context", ".")).resolve()
    raw_args = build.get("args") or {}
    if isinstance(raw_args, list):
        raw_args = dict(item.split("=", 1) if "=" in item else (item, "") for item in raw_args)
    args = {str(key): "" if value is None else str(value) for key, value in raw_args.items()}
    return context, build.get("dockerfile", "Dockerfile"), args


def container_ports(service: dict) -> set[int]:
    """Container-side ports a service publishes (short and long syntax)."""
    ports: set[int] = set()
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            ports.add(int(entry["target"]))
            continue
        spec = str(entry).split("/", 1)[0]  # drop /tcp, /udp
        ports.add(int(spec.rsplit(":", 1)[-1]))
    return ports


def env_of(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def mounts_of(service: dict) -> list[tuple[str, str, str]]:
    """(type, source, target) for each entry of a service's `volumes:`."""
    mounts: list[tuple[str, str, str]] = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            mounts.append((entry.get("type", "volume"), str(entry.get("source", "")), str(entry["target"])))
            continue
        parts = str(entry).split(":")
        if len(parts) == 1:  # anonymous volume: just a container path
            mounts.append(("volume", "", parts[0]))
            continue
        source, target = parts[0], parts[1]
        kind = "bind" if source.startswith(("/", ".", "~", "$")) else "volume"
        mounts.append((kind, source, target))
    return mounts


def is_under(path: str, directory: str) -> bool:
    p, d = PurePosixPath(path), PurePosixPath(directory)
    return p == d or d in p.parents


def healthcheck_words(service: dict) -> list[str]:
    check = service.get("healthcheck")
    assert check, "service has no healthcheck"
    assert not check.get("disable", False), "healthcheck is disabled"
    return command_words(check["test"])


def specifier_set(spec: str) -> set[str]:
    return {part.replace(" ", "") for part in spec.split(",") if part.strip()}


# ------------------------------------------------------------------- compose: services


def test_default_service_has_no_profile(services: dict) -> None:
    assert CPU_SERVICE in services, f"no {CPU_SERVICE!r} service"
    assert not services[CPU_SERVICE].get("profiles"), (
        f"{CPU_SERVICE!r} must run by default, but it is in profiles {services[CPU_SERVICE]['profiles']}"
    )


def test_default_service_builds_from_repo_dockerfile(services: dict) -> None:
    context, dockerfile_name, args = build_of(services[CPU_SERVICE])
    assert context == ROOT, f"build context is {context}, not the repository root"
    assert (context / dockerfile_name).resolve() == DOCKERFILE, f"builds from {dockerfile_name!r}"
    assert DOCKERFILE.is_file(), "Dockerfile is missing"
    assert not args.get("JAX_EXTRA"), "the default service must build the CPU image (no JAX_EXTRA)"


def test_default_service_publishes_8000(services: dict) -> None:
    assert 8000 in container_ports(services[CPU_SERVICE]), "container port 8000 is not published"


@pytest.mark.parametrize("name", [CPU_SERVICE, GPU_SERVICE, PG_APP, RAY_APP])
def test_healthcheck_hits_healthz(services: dict, name: str) -> None:
    words = healthcheck_words(services[name])
    assert words[0] in {"CMD", "CMD-SHELL"}, f"healthcheck test must start with CMD/CMD-SHELL: {words}"
    assert any(re.search(r"https?://[^/\s'\"]+:8000/healthz\b", word) for word in words), (
        f"healthcheck does not request :8000/healthz: {words}"
    )


@pytest.mark.parametrize("name", [CPU_SERVICE, GPU_SERVICE, PG_APP, PG_SERVICE, RAY_APP, RAY_HEAD, RAY_WORKER])
def test_restart_policy(services: dict, name: str) -> None:
    assert services[name].get("restart") == "unless-stopped"


def test_gpu_service_only_in_gpu_profile(services: dict) -> None:
    assert GPU_SERVICE in services, f"no {GPU_SERVICE!r} service"
    assert services[GPU_SERVICE].get("profiles") == ["gpu"]


def test_gpu_service_builds_cuda_jax(services: dict) -> None:
    context, dockerfile_name, args = build_of(services[GPU_SERVICE])
    assert (context / dockerfile_name).resolve() == DOCKERFILE
    assert args.get("JAX_EXTRA") == "cuda13", f"build args are {args}"


def test_gpu_service_reserves_nvidia_gpu(services: dict) -> None:
    devices = (((services[GPU_SERVICE].get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get(
        "devices"
    ) or []
    assert any(
        device.get("driver") == "nvidia" and "gpu" in (device.get("capabilities") or []) for device in devices
    ), f"no nvidia device with the gpu capability reserved: {devices}"


def test_services_do_not_share_a_host_port(services: dict) -> None:
    host_ports: dict[str, str] = {}
    for name in (CPU_SERVICE, GPU_SERVICE, PG_APP, RAY_APP):
        for entry in services[name].get("ports") or []:
            published = str(entry["published"]) if isinstance(entry, dict) else str(entry).split(":")[-2]
            assert published not in host_ports, (
                f"{name} and {host_ports.get(published)} both publish host port {published}"
            )
            host_ports[published] = name


def test_postgres_profile_points_the_app_at_a_healthy_postgres(services: dict) -> None:
    app, db = services[PG_APP], services[PG_SERVICE]
    assert app.get("profiles") == ["postgres"] and db.get("profiles") == ["postgres"]
    assert str(db.get("image", "")).startswith("postgres:")
    assert "pg_isready" in healthcheck_words(db), "the database needs a health check the app can wait for"
    assert (app.get("depends_on") or {}).get(PG_SERVICE, {}).get("condition") == "service_healthy"
    url = urlparse(env_of(app)["NEUROGLASS_DATABASE_URL"])
    env = env_of(db)
    assert url.scheme == "postgresql+asyncpg" and url.hostname == PG_SERVICE and url.port == 5432
    assert (url.username, url.password, url.path.lstrip("/")) == (
        env["POSTGRES_USER"],
        env["POSTGRES_PASSWORD"],
        env["POSTGRES_DB"],
    )
    targets = [target for kind, source, target in mounts_of(db) if kind == "volume" and source]
    assert "/var/lib/postgresql/data" in targets, f"the database's files are not on a volume: {targets}"
    _, _, args = build_of(app)
    assert not args.get("JAX_EXTRA"), "the PostgreSQL app is the CPU image"


def flag(words: list[str], name: str) -> str | None:
    """The value of ``--name=value`` (or ``--name value``) among a command's words."""
    for i, word in enumerate(words):
        if word.startswith(f"{name}="):
            return word.split("=", 1)[1]
        if word == name and i + 1 < len(words):
            return words[i + 1]
    return None


def test_ray_profile_is_a_head_a_worker_and_the_app(services: dict) -> None:
    """The ray profile: a head and a worker from the app's image (with the ray extra), the app pointed at the
    head's client server and training its sweeps there."""
    for name in (RAY_APP, RAY_HEAD, RAY_WORKER):
        assert name in services, f"no {name!r} service"
        assert services[name].get("profiles") == ["ray"], f"{name} is not (only) in the ray profile"
        context, dockerfile_name, args = build_of(services[name])
        assert (context / dockerfile_name).resolve() == DOCKERFILE, f"{name} builds from {dockerfile_name!r}"
        assert "ray" in args.get("EXTRAS", "").split(","), f"{name} is not built with the ray extra: {args}"
        assert not args.get("JAX_EXTRA"), f"{name} is the CPU image"
    images = {services[name].get("image") for name in (RAY_APP, RAY_HEAD, RAY_WORKER)}
    assert len(images) == 1 and None not in images, f"the ray profile's services must share one image: {images}"

    head = command_words(services[RAY_HEAD]["command"])
    assert head[:3] == ["ray", "start", "--head"] and "--block" in head, f"head command is {head}"
    worker = command_words(services[RAY_WORKER]["command"])
    assert worker[:2] == ["ray", "start"] and "--block" in worker, f"worker command is {worker}"
    assert flag(worker, "--address") == f"{RAY_HEAD}:{flag(head, '--port')}", f"worker joins {worker}"

    env = env_of(services[RAY_APP])
    assert env.get("NEUROGLASS_SWEEP_BACKEND") == "ray"
    url = urlparse(env.get("NEUROGLASS_RAY_ADDRESS", ""))
    assert (url.scheme, url.hostname) == ("ray", RAY_HEAD), f"NEUROGLASS_RAY_ADDRESS is {url.geturl()!r}"
    assert str(url.port) == flag(head, "--ray-client-server-port"), "the app must reach the head's client server"
    modes = {name: env_of(services[name]).get("RAY_AUTH_MODE") for name in (RAY_APP, RAY_HEAD, RAY_WORKER)}
    assert len(set(modes.values())) == 1, f"the app and the nodes must agree on Ray's authentication: {modes}"
    for name in (RAY_HEAD, RAY_WORKER):
        assert not container_ports(services[name]), f"{name} publishes Ray's ports beyond the project's network"
    for name in (RAY_APP, RAY_WORKER):
        needs = (services[name].get("depends_on") or {}).get(RAY_HEAD, {})
        assert needs.get("condition") == "service_healthy", f"{name} must wait for a healthy head"
    for name in (RAY_HEAD, RAY_WORKER):
        words = healthcheck_words(services[name])
        assert words[0] == "CMD" and words[1:3] == ["ray", "status"], f"{name}'s health check is {words}"


def test_ray_nodes_share_the_apps_data_and_compile_cache(services: dict) -> None:
    """The actors build the data and compile on the nodes: at the app's paths, on the same volumes."""
    env = env_of(services[RAY_APP])
    app = {target: source for kind, source, target in mounts_of(services[RAY_APP]) if kind == "volume"}
    for path in (env["NEUROGLASS_DATA_DIR"], env["NEUROGLASS_COMPILE_CACHE_DIR"]):
        (target,) = [t for t in app if is_under(path, t)]
        for name in (RAY_HEAD, RAY_WORKER):
            node = {t: source for kind, source, t in mounts_of(services[name]) if kind == "volume"}
            assert node.get(target) == app[target], f"{name} does not mount {app[target]} at {target}"
    default = {source for kind, source, _ in mounts_of(services[CPU_SERVICE]) if kind == "volume"}
    assert not default & set(app.values()), "the ray app must not share the default app's store"


def test_the_ray_extra_is_pinned_and_installed_for_tests() -> None:
    """pyproject's ray extra pins Ray (the cluster's nodes must run the same version); make test installs it."""
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    (ray,) = extras["ray"]
    assert re.fullmatch(r"ray(\[[a-z,]+\])?==\d+\.\d+\.\d+", ray), f"ray is not pinned: {ray!r}"
    installs = re.findall(r"pip install[^\n]*-e '\.\[([^\]]*)\]'", MAKEFILE.read_text())
    assert any({"test", "ray"} <= set(group.split(",")) for group in installs), f"make installs {installs}"


# -------------------------------------------------------------- compose: volumes & env


def test_named_volumes_are_declared(compose: dict, services: dict) -> None:
    declared = set((compose.get("volumes") or {}).keys())
    used = {
        source for service in services.values() for kind, source, _ in mounts_of(service) if kind == "volume" and source
    }
    assert used, "no named volumes are used"
    assert used <= declared, f"named volumes used but not declared at top level: {sorted(used - declared)}"


@pytest.mark.parametrize("name", [CPU_SERVICE, GPU_SERVICE, RAY_APP])
def test_database_and_compile_cache_are_on_named_volumes(services: dict, name: str) -> None:
    service = services[name]
    env = env_of(service)
    volume_targets = [target for kind, source, target in mounts_of(service) if kind == "volume" and source]

    db_url = env.get("NEUROGLASS_DATABASE_URL", "")
    assert db_url.startswith("sqlite"), f"unexpected NEUROGLASS_DATABASE_URL {db_url!r}"
    db_path = urlparse(db_url).path
    db_path = "/" + db_path.lstrip("/")  # sqlite:////data/x.sqlite -> //data/x.sqlite -> /data/x.sqlite
    assert any(is_under(db_path, target) for target in volume_targets), (
        f"database file {db_path} is not on a named volume (mounts: {volume_targets})"
    )

    cache_dir = env.get("NEUROGLASS_COMPILE_CACHE_DIR", "")
    assert cache_dir.startswith("/"), f"NEUROGLASS_COMPILE_CACHE_DIR must be absolute, got {cache_dir!r}"
    assert any(is_under(cache_dir, target) for target in volume_targets), (
        f"compile cache {cache_dir} is not on a named volume (mounts: {volume_targets})"
    )


# ------------------------------------------------------------------------ Dockerfile


def test_dockerfile_base_image(dockerfile: list[tuple[str, str]]) -> None:
    bases = args_of(dockerfile, "FROM")
    assert bases, "Dockerfile has no FROM"
    image = bases[-1].split()[0]  # the final stage is what runs
    assert re.fullmatch(r"python:3\.11([.\-].*)?", image), f"final stage is based on {image!r}"


def test_dockerfile_declares_jax_extra_arg(dockerfile: list[tuple[str, str]]) -> None:
    names = {arg.split("=", 1)[0].strip() for arg in args_of(dockerfile, "ARG")}
    assert "JAX_EXTRA" in names, f"ARG JAX_EXTRA missing (ARGs: {sorted(names)})"


def test_dockerfile_exposes_8000(dockerfile: list[tuple[str, str]]) -> None:
    exposed = {port.split("/", 1)[0] for args in args_of(dockerfile, "EXPOSE") for port in args.split()}
    assert "8000" in exposed, f"EXPOSE lists {sorted(exposed)}"


def test_dockerfile_runs_server(dockerfile: list[tuple[str, str]]) -> None:
    commands = args_of(dockerfile, "CMD")
    assert commands, "Dockerfile has no CMD"
    words = command_words(commands[-1])
    assert words[:3] == ["python", "-m", "server"], f"CMD is {words}"
    assert "--host" in words and words[words.index("--host") + 1] == "0.0.0.0", f"CMD is {words}"
    assert "--port" in words and words[words.index("--port") + 1] == "8000", f"CMD is {words}"


def test_dockerfile_runs_as_non_root(dockerfile: list[tuple[str, str]]) -> None:
    users = args_of(dockerfile, "USER")
    assert users, "Dockerfile never switches away from root"
    user = users[-1].split(":", 1)[0]
    assert user not in {"root", "0"}, f"final USER is {user!r}"


def test_dockerfile_healthcheck_hits_healthz(dockerfile: list[tuple[str, str]]) -> None:
    checks = args_of(dockerfile, "HEALTHCHECK")
    assert checks, "Dockerfile has no HEALTHCHECK"
    assert "urllib" in checks[-1] and re.search(r"https?://[^/\s'\"]+:8000/healthz\b", checks[-1]), (
        f"HEALTHCHECK does not fetch :8000/healthz with urllib: {checks[-1]}"
    )


def test_dockerfile_installs_the_chosen_extras(dockerfile: list[tuple[str, str]]) -> None:
    names = {arg.split("=", 1)[0].strip() for arg in args_of(dockerfile, "ARG")}
    assert "EXTRAS" in names, f"ARG EXTRAS missing (ARGs: {sorted(names)})"
    runs = " ".join(args_of(dockerfile, "RUN"))
    assert re.search(r"pip install \"?\.\[\$\{?EXTRAS\}?\]", runs), "no `pip install .[${EXTRAS}]` in any RUN"
    assert "optional-dependencies" in runs, "the dependency layer must hold the extras' requirements too"


def test_dockerfile_cuda_jax_range_matches_pyproject(dockerfile: list[tuple[str, str]]) -> None:
    runs = " ".join(args_of(dockerfile, "RUN"))
    match = re.search(r"jax\[\$\{?JAX_EXTRA\}?\]\s*(?P<spec>[<>=!~][^\"'\s;&|]*)", runs)
    assert match, "no `jax[${JAX_EXTRA}]<range>` install in any RUN"
    image_range = specifier_set(match["spec"])

    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    project_ranges = [
        m["spec"]
        for dep in dependencies
        if (m := re.fullmatch(r"jax\s*(\[[^\]]*\])?\s*(?P<spec>(?:[<>=!~][^;]*?)?)\s*(;.*)?", dep))
    ]
    assert len(project_ranges) == 1, f"want exactly one `jax` requirement in pyproject.toml: {dependencies}"
    assert image_range == specifier_set(project_ranges[0]), (
        f"Dockerfile installs jax{match['spec']} but pyproject.toml requires jax{project_ranges[0]}"
    )
