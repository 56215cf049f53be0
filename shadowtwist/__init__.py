"""
shadowtwist: a KrakenD-compatible API gateway on Twisted whose reason to exist is traffic shadowing.
"""

__version__ = "0.1.0"
