"""A fresh process that imports shipyard and loads a model by alias stays lean.

A regression guard for the cold-load time, checked through `sys.modules` (what got imported),
never by timing: `import shipyard` imports no engine; reading the registry from a SQLite file
goes through the stdlib sqlite3 driver (no SQLAlchemy, no Alembic when the schema is current);
an ONNX load imports neither scikit-learn nor pandas. The stdlib read path must read exactly
what the SQLAlchemy path reads.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import shipyard as sy
from shipyard.metadata.db import head_revisions
from tests.conftest import require_module

# never imported by `import shipyard`, nor by a load by alias from a SQLite registry
ENGINES = ("duckdb", "sqlalchemy", "alembic", "pydantic_settings", "fsspec", "shipyard.features",
           "shipyard.tracking", "shipyard.training", "shipyard.batch", "shipyard.serving")
# what only the model's own runtime may bring (unpickling scikit-learn imports pandas)
MODEL_LIBS = ("sklearn", "scipy", "pandas", "pyarrow")

rng = np.random.default_rng(3)
X = pd.DataFrame({"count": rng.integers(0, 20, 80), "ratio": rng.normal(size=80)})
Y = (X["ratio"] + X["count"] / 10 > 1).astype(int)


def run_fresh(script: str) -> Any:
    """Run `script` in a new interpreter; it prints one JSON document, returned parsed."""
    prelude = (f"import json, sys\nwatched = {ENGINES + MODEL_LIBS!r}\n"
               "loaded = lambda: sorted(m for m in watched if m in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(script)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def model() -> LogisticRegression:
    return LogisticRegression().fit(X, Y)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[sy.Project]:
    (tmp_path / "shipyard.yaml").write_text("project: lean\n")  # SQLite metadata by default
    project = sy.Project.load(tmp_path)
    yield project
    project.close()


def test_import_shipyard_and_its_public_names_import_no_engine() -> None:
    seen = run_fresh("""
        import shipyard
        after_import = loaded()
        shipyard.Project, shipyard.ShipyardError, shipyard.NotFoundError, shipyard.__version__
        print(json.dumps([after_import, loaded(), sorted(shipyard.__all__) == sorted(
            n for n in shipyard.__all__ if hasattr(shipyard, n))]))
    """)
    assert seen == [[], [], True]


def test_a_native_load_by_alias_reads_sqlite_without_sqlalchemy(project: sy.Project,
                                                                model: LogisticRegression,
                                                                ) -> None:
    version = project.models.register("fraud", model, signature=X, tags={"team": "risk"})
    project.models.set_alias("fraud", "champion", version.version)
    seen = run_fresh(f"""
        import shipyard
        project = shipyard.Project.load({str(project.root)!r})
        ref = str(project.models.resolve("fraud@champion"))
        record = project.models.get_version("fraud@champion")
        after_lookup = loaded()
        loaded_model = project.models.load("fraud@champion")
        after_load = loaded()
        import pandas as pd
        frame = pd.DataFrame({X.head(5).to_dict("list")!r})
        print(json.dumps([ref, record.tags, after_lookup, after_load,
                          loaded_model.predict(frame).tolist()]))
    """)
    ref, tags, after_lookup, after_load, predictions = seen
    assert (ref, tags, after_lookup) == ("fraud/1", {"team": "risk"}, [])
    assert [m for m in after_load if m not in MODEL_LIBS] == [] and "sklearn" in after_load
    assert predictions == model.predict(X.head(5)).tolist()


def test_an_onnx_load_imports_neither_scikit_learn_nor_pandas(project: sy.Project,
                                                              model: LogisticRegression) -> None:
    require_module("skl2onnx")
    require_module("onnxruntime")
    version = project.models.register("fraud", model, signature=X, onnx=True)
    project.models.set_alias("fraud", "champion", version.version)
    seen = run_fresh(f"""
        import shipyard
        loaded_model = shipyard.Project.load({str(project.root)!r}).models.load(
            "fraud@champion", runtime="onnx")
        after_load = loaded()
        import pandas as pd
        frame = pd.DataFrame({X.head(5).to_dict("list")!r})
        print(json.dumps([after_load, loaded_model.predict(frame).tolist()]))
    """)
    after_load, predictions = seen
    assert after_load == []
    assert predictions == model.predict(X.head(5)).tolist()


def test_the_sqlite_read_path_reads_what_sqlalchemy_reads(project: sy.Project,
                                                          model: LogisticRegression,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    models = project.models
    for n in range(3):
        models.register("fraud", model, signature=X, description=f"v{n + 1}",
                        tags={"team": "risk", "n": n})
    models.register("churn", model, signature=X)
    models.set_alias("fraud", "champion", 2)
    models.set_alias("fraud", "shadow", 2)
    models.set_alias("fraud", "old", 1)
    models.archive("fraud/3")
    refs = ["fraud", "fraud/1", "fraud/2", "fraud/3", "fraud@champion", "fraud@old", "churn"]
    fast = [models.get_version(r) for r in refs]
    fast_refs = [models.resolve(r) for r in refs]
    assert [v.ref for v in fast] == ["fraud/2", "fraud/1", "fraud/2", "fraud/3", "fraud/2",
                                     "fraud/1", "churn/1"]
    assert fast[0].aliases == ("champion", "shadow") and fast[3].archived
    assert fast[1].tags == {"team": "risk", "n": "0"} and fast[1].has_onnx is False
    assert fast[0].created_at.tzinfo is not None

    monkeypatch.setattr(project.db, "sqlite_path", None)  # as if it were not a SQLite file
    assert [models.get_version(r) for r in refs] == fast
    assert [models.resolve(r) for r in refs] == fast_refs


def test_a_missing_alias_still_says_what_exists(project: sy.Project,
                                                model: LogisticRegression) -> None:
    project.models.register("fraud", model, signature=X)
    with pytest.raises(sy.NotFoundError, match=r"'fraud' has no alias 'nope'.*Versions: \[1\]"):
        project.models.load("fraud@nope")
    with pytest.raises(sy.NotFoundError, match="'ghost' is not registered"):
        project.models.resolve("ghost@champion")


def test_the_first_lookup_in_a_new_database_creates_the_schema(tmp_path: Path) -> None:
    (tmp_path / "shipyard.yaml").write_text("project: fresh\n")
    with sy.Project.load(tmp_path) as project:
        with pytest.raises(sy.NotFoundError, match="'fraud' is not registered"):
            project.models.get_version("fraud@champion")
        path = project.db.sqlite_path
    assert path is not None
    with sqlite3.connect(path) as conn:
        current = {row[0] for row in conn.execute("SELECT version_num FROM alembic_version")}
    assert current == head_revisions()


def test_the_schema_check_is_one_query_when_current(project: sy.Project,
                                                    model: LogisticRegression) -> None:
    """A process that finds the schema current decides so without importing Alembic."""
    project.models.register("fraud", model, signature=X)
    seen = run_fresh(f"""
        import shipyard
        project = shipyard.Project.load({str(project.root)!r})
        project.db.migrate()
        print(json.dumps(["alembic" in sys.modules, project.db._migrated]))
    """)
    assert seen == [False, True]
