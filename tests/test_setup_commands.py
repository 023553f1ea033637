"""The README's two set-up commands, .ci/run and the Dockerfile must stay in step."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    """The README's set-up commands: bash blocks of its 'Set up' section."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S)]


def test_readme_has_exactly_two_setup_commands() -> None:
    commands = readme_commands()
    assert len(commands) == 2
    run_command, test_command = commands
    assert "streamlit run app.py" in run_command and "requirements.txt" in run_command
    assert "pytest" in test_command and "requirements-dev.txt" in test_command


def test_ci_runs_the_readme_test_command_exactly() -> None:
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert readme_commands()[1] in ci_lines
    assert any("apt-get install" in line and "chromium" in line for line in ci_lines)
    assert any(line.startswith("export ASSOCLENS_REQUIRE_BROWSER=1") for line in ci_lines)


def test_dockerfile_installs_like_the_readme() -> None:
    install = readme_commands()[0].split("&& .venv/bin/streamlit")[0].strip()
    dockerfile = (ROOT / "Dockerfile").read_text()
    run_lines = [line.removeprefix("RUN ").strip() for line in dockerfile.splitlines() if line.startswith("RUN ")]
    assert install in run_lines
    assert dockerfile.splitlines()[1].startswith("FROM python:3.11")
    assert "--server.address=0.0.0.0" in dockerfile and "8501" in dockerfile
    assert "VOLUME" in dockerfile and "ASSOCLENS_DB=/data/" in dockerfile


def test_dev_requirements_include_runtime_requirements() -> None:
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text()
    assert "torch==2.13.0" in (ROOT / "requirements.txt").read_text()
