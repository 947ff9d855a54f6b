"""What the three command-line tools share: the option vocabulary (``args``) and logging (``logs``).

``llinet-build``'s commands live in :mod:`builder.commands`; ``llinet-train`` and ``llinet-eval``
in ``model``, which may import this package but not the commands.
"""
