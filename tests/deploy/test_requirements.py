"""The two requirement sets a security review reads: production's holds no test or lint tool,
both pin every package with hashes, and the dev set runs production's very versions."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import REPO_ROOT

TOOLS = {
    "pytest",
    "pytest-django",
    "pytest-xdist",
    "ruff",
    "mypy",
    "schemathesis",
    "hypothesis",
    "pip-tools",
}
# A requirement line of pip-compile's output: "name==version \", then its hash lines.
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\$")


def _pins(name: str) -> dict[str, str]:
    lines = (Path(REPO_ROOT) / name).read_text().splitlines()
    pins: dict[str, str] = {}
    for number, line in enumerate(lines):
        if not line or line.startswith(("#", " ")):
            continue
        match = _PIN.match(line)
        assert match, f"{name}:{number + 1} is not pinned with hashes: {line!r}"
        assert lines[number + 1].strip().startswith("--hash=sha256:"), f"{name}:{number + 1}"
        pins[match[1].lower()] = match[2]
    return pins


def test_production_installs_no_test_or_lint_tool() -> None:
    runtime = _pins("requirements.txt")
    assert "django" in runtime and "gunicorn" in runtime
    assert TOOLS.isdisjoint(runtime), TOOLS & runtime.keys()


def test_the_dev_set_is_production_plus_the_tools_at_the_same_versions() -> None:
    runtime, dev = _pins("requirements.txt"), _pins("requirements-dev.txt")
    assert {name: dev.get(name) for name in runtime} == runtime
    assert dev.keys() >= TOOLS


def test_the_makefile_installs_with_require_hashes() -> None:
    makefile = (Path(REPO_ROOT) / "Makefile").read_text()
    installs = [line for line in makefile.splitlines() if "pip install" in line]
    assert installs and all("--require-hashes" in line for line in installs), installs
