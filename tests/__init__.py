"""
shadowtwist's tests (trial). Run them all with C{make test}.
"""
