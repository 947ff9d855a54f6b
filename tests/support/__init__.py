"""Test helpers shared by several test modules.

pytest puts ``tests/`` on ``sys.path`` (the default "prepend" import mode,
because ``tests/`` has no ``__init__.py``), so tests import these as::

    from support.http_server import LocalHTTPServer, Route, Response
"""
