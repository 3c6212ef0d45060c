"""pyproject.toml (`pip install .`): the mlops_core package with the client's libraries only, the [server] extra
pinned exactly as requirements.txt's runtime section (so the two install paths cannot drift), [dask] pinned."""

from __future__ import annotations

import re
import tomllib

from mlops_core import __version__
from mlops_core.config import PROJECT_ROOT


def _name(req: str) -> str:
    return re.split(r"[\[<>=!~ ]", req, maxsplit=1)[0].lower()


def test_pyproject_installs_mlops_core_with_client_deps_and_server_pins_equal_to_requirements():
    meta = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    project = meta["project"]
    runtime = (PROJECT_ROOT / "requirements.txt").read_text().split("# Tests")[0]
    pins = [ln.strip() for ln in runtime.splitlines() if ln.strip() and not ln.startswith("#")]
    assert project["optional-dependencies"]["server"] == pins
    assert {_name(r) for r in project["dependencies"]} == {"httpx", "pydantic", "pydantic-settings"}
    exact = {_name(p): p.split("==")[1] for p in pins}
    for req in project["dependencies"]:  # the client's ranges admit the versions the Hub is tested with
        low, high = re.findall(r">=([\d.]+),<([\d.]+)", req)[0]
        have = tuple(int(x) for x in exact[_name(req)].split("."))
        assert tuple(int(x) for x in low.split(".")) <= have < tuple(int(x) for x in high.split(".")), req
    (dask,) = project["optional-dependencies"]["dask"]
    assert re.fullmatch(r"dask\[distributed\]==\d+\.\d+\.\d+", dask)
    assert meta["tool"]["setuptools"]["packages"]["find"]["include"] == ["mlops_core*"]
    assert meta["tool"]["setuptools"]["dynamic"]["version"]["attr"] == "mlops_core.__version__" and __version__
    assert project["scripts"]["mlops-hub"] == "mlops_core.cli:main"
