"""The project's Dockerfile built and run with podman on Debian, as root, with no registry.

Debian's podman runs rootful with runc and no default ulimits (crun fails on cgroup v1 and a
NOFILE hard limit below podman's default). The FROM image is stood in for by a Debian bookworm
root filesystem (mmdebstrap: python3 3.11, the `python` alias, the host's CA certificates so
pip inside the build verifies PyPI through a re-signing proxy), imported under the FROM's exact
name so nothing is pulled. It stays in podman's storage: later runs reuse it, and the build's
own layer cache.
"""

import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from prometheus_helpers import REPO, require_binary

PACKAGES = "podman runc netavark iptables mmdebstrap"
CONTAINERS_CONF = """[containers]
default_ulimits = []

[engine]
runtime = "runc"
"""


def podman_env() -> dict[str, str]:
    """The environment every podman call runs with (its CONTAINERS_CONF file written once)."""
    if os.geteuid() != 0:
        message = "building the image needs root (rootful podman)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    for tool in ("podman", "runc", "mmdebstrap"):
        require_binary(tool, packages=PACKAGES)
    conf = Path(tempfile.gettempdir()) / "fraud-image-test-containers.conf"
    conf.write_text(CONTAINERS_CONF)
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def podman(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    """Run `podman args...`; its stdout, or a failure naming the command and its output."""
    done = subprocess.run(
        ["podman", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"podman {' '.join(args)}:\n{done.stdout}{done.stderr}"
    return done.stdout


def base_image_name() -> str:
    """The fully qualified name of the Dockerfile's FROM image."""
    match = re.search(r"^FROM (\S+)", (REPO / "Dockerfile").read_text(), re.M)
    assert match
    name = match.group(1)
    return name if "/" in name else f"docker.io/library/{name}"


def ensure_base_image(env: dict[str, str]) -> None:
    """Import the stand-in for the FROM image unless podman's storage already holds it."""
    name = base_image_name()
    if subprocess.run(["podman", "image", "exists", name], env=env).returncode == 0:
        return
    with tempfile.TemporaryDirectory(prefix="fraud-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        subprocess.run(
            [
                "mmdebstrap",
                "--quiet",
                "--variant=minbase",
                "--include=python3,python3-venv,python-is-python3,ca-certificates",
                "--customize-hook=cp -a /usr/local/share/ca-certificates/. "
                '"$1/usr/local/share/ca-certificates/"',
                '--customize-hook=chroot "$1" update-ca-certificates >/dev/null',
                "bookworm",
                str(rootfs),
            ],
            check=True,
            timeout=900,
        )
        podman(
            env,
            "import",
            "--quiet",
            "--change",
            "ENV LANG=C.UTF-8",
            "--change",
            'CMD ["python3"]',
            str(rootfs),
            name,
            timeout=300,
        )


def build_image(env: dict[str, str], tag: str) -> None:
    """`podman build` of the checkout; docker format keeps HEALTHCHECK (OCI drops it)."""
    ensure_base_image(env)
    podman(
        env, "build", "--format", "docker", "--network", "host", "-t", tag, str(REPO), timeout=1200
    )
