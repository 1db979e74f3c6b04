"""The import contracts (pyproject.toml's [tool.importlinter], ARCHITECTURE's layers): `lint-imports`
passes, so `make test-unit` sees a broken one as scripts/test does; and the home-made contract
against import cycles (scripts/import_contracts.py) does refuse a cycle, even one closed by an
import inside a function."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

ROOT = pathlib.Path(__file__).resolve().parent.parent
LINT_IMPORTS = pathlib.Path(sys.executable).parent / "lint-imports"


def lint_imports(cwd: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1", COLUMNS="200")
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_every_import_contract_is_kept():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    for contract in ("Layers point one way", "No import cycles between modules",
                     "Only the wiring knows which implementation", "Forms (WTForms) belong to the screens",
                     "Each blueprint stands alone", "The external systems' implementations do not use each other"):
        assert contract in result.stdout
    assert " 0 broken." in result.stdout


def test_a_cycle_closed_inside_a_function_breaks_the_acyclic_contract(tmp_path):
    package = tmp_path / "cyclic"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from . import b\n")
    (package / "b.py").write_text(textwrap.dedent("""\
        def later():
            from . import a  # the kind of import that hid the model registry's cycle
            return a
    """))
    (package / "c.py").write_text("from . import a\n")  # imports into the cycle, not part of it
    config = textwrap.dedent("""\
        [tool.importlinter]
        root_packages = ["cyclic"]
        contract_types = ["acyclic_modules: scripts.import_contracts.AcyclicModulesContract"]

        [[tool.importlinter.contracts]]
        name = "No cycles"
        type = "acyclic_modules"
    """)
    (tmp_path / "pyproject.toml").write_text(config)
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "cyclic.a -> cyclic.b -> cyclic.a" in result.stdout
    assert "cyclic.c" not in result.stdout.split("Broken contracts")[1]

    (tmp_path / "pyproject.toml").write_text(config + 'ignore_imports = ["cyclic.b -> cyclic.a"]\n')
    assert lint_imports(tmp_path).returncode == 0
