"""The retrieval methods of the LLINet paper's Table 1, as heads and losses on LLINet's encoders.

One module per method (``llinet``, ``dar``, ``ulslvc``, ``scan``, ``dscmr``, ``timam``, ``cmpm``,
``cme``); :mod:`model.methods.registry` names them for ``llinet-train --method``. Every method
trains the same image and audio encoders on the same data and is evaluated by ``llinet-eval``.
"""
