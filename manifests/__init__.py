"""The committed manifests (``instrument32``: the INSTRUMENT-32CLASS selection, split and audit).

A package only so that they ship in the wheel and are found with
:mod:`importlib.resources` wherever llinet is installed; see
:func:`builder.resources.committed_manifests`.
"""
