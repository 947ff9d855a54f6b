"""Offline demo and test material: synthetic videos and datasets, a loopback mirror, the end-to-end demo run. Only the
demo command, the tests and the benches import it.
"""
