"""The one manifest schema every stage reads and writes, YouTube/clip IDs, what a media root holds, and which rows are
in the dataset.
"""
