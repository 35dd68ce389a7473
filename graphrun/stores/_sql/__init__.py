"""The control store's logic, written once for both SQL dialects, one module per noun.

Every method is one transaction of named queries (``graphrun/sql/<dialect>/queries.sql``) run by a
``Db`` connection; the dialect adapters (``stores/sqlite.py``, ``stores/postgres.py``) only say how a
transaction gets a connection, and declare the ``Capabilities`` the logic adapts to. Both run each
transaction whole on a thread of their own with a synchronous driver (the standard library's ``sqlite3``,
psycopg's synchronous API): one thread hop per call, and one body of control-store logic that the
contract suite holds to the same behaviour on both databases. A caller that is cancelled does not cut a
transaction short: the thread finishes it.

Queries take JSON as text (Postgres casts it to ``jsonb``) and times as fixed-width UTC text, so that the
same parameters serve both dialects.

- ``core``: the ``Db`` protocol, ``Capabilities``, transactions, the store's clock, parameter helpers
- ``assistants``, ``threads``, ``crons``: those nouns
- ``runs``: a run's API side (creating, reading, cancelling); ``leases``: its worker side (claims,
  leases, outcomes, reaping)
"""

from __future__ import annotations

from graphrun.stores._sql.assistants import Assistants
from graphrun.stores._sql.core import Capabilities, Db
from graphrun.stores._sql.crons import Crons
from graphrun.stores._sql.leases import Leases

__all__ = ["Capabilities", "Db", "SqlStore"]


class SqlStore(Assistants, Crons, Leases):
    """``ControlStore`` over named queries; an adapter provides ``_write``, ``_read``, ``_migrations``,
    its queries and its capabilities. (``Crons`` brings ``Runs`` and ``Threads``.)"""
