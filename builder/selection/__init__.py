"""Choosing clips: select (rank per class), split (class-disjoint, leakage audit) and subset."""
