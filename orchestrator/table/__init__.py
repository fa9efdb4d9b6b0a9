"""The accuracy table: real child accuracies of many distinct activation functions, built by
``actsearch-ctl table build`` and replayed by ``actsearch-ctl search-sim --table``
(docs/search.md). ``format`` is the file and its API; it imports neither torch nor NumPy."""

from orchestrator.table.format import Curve, Entry, Table, TableError, load, save

__all__ = ["Curve", "Entry", "Table", "TableError", "load", "save"]
