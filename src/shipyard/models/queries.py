"""The registry's statements on SQLAlchemy, built once with bind parameters (building costs more
than running them on SQLite), and the tables they use. See `sqlite_read` for the load path."""

from __future__ import annotations

import sqlalchemy as sa

from shipyard.metadata.tables import model_aliases as ma
from shipyard.metadata.tables import model_version_features as mf
from shipyard.metadata.tables import model_version_tags as mt
from shipyard.metadata.tables import model_versions as mv
from shipyard.metadata.tables import models as mm
from shipyard.metadata.tables import runs

__all__ = ["BY_ALIAS", "BY_VERSION", "EXTRAS", "LATEST", "ma", "mf", "mm", "mt", "mv", "runs"]

_KEY = (mv.c.project == sa.bindparam("project"), mv.c.name == sa.bindparam("name"))

BY_VERSION = sa.select(mv).where(*_KEY, mv.c.version == sa.bindparam("version"))

BY_ALIAS = sa.select(mv).join(ma, sa.and_(ma.c.project == mv.c.project, ma.c.name == mv.c.name,
                                          ma.c.version == mv.c.version)).where(
    *_KEY, ma.c.alias == sa.bindparam("alias"))

LATEST = (sa.select(mv).where(*_KEY, mv.c.archived == sa.false())
          .order_by(mv.c.version.desc()).limit(1))

# tags, aliases and feature lineage of some models' versions, in one round trip
EXTRAS = sa.union_all(*[
    sa.select(sa.literal(kind).label("kind"), table.c.name, table.c.version, a.label("a"),
              b.label("b"))
    .where(table.c.project == sa.bindparam("project"),
           table.c.name.in_(sa.bindparam("names", expanding=True)))
    for kind, table, a, b in (("tags", mt, mt.c.key, mt.c.value),
                              ("aliases", ma, ma.c.alias, ma.c.alias),
                              ("features", mf, mf.c.view, mf.c.feature))])
