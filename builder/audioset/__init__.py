"""AudioSet metadata: segment lists and ontology parsing, target class lists, the resumable metadata download and the
bundled INSTRUMENT-32 slice.
"""
