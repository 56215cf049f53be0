"""
twistd dropin: C{twistd -n shadowgw --config etc/krakend.json}.

Kept to one lazy line: the plugin cache imports this module whenever it is rebuilt, so nothing here
may import the reactor or the gateway's own modules.
"""

from twisted.application.service import ServiceMaker

shadowgw = ServiceMaker(
    "shadowgw",
    "shadowtwist.tap",
    "KrakenD-compatible API gateway with traffic shadowing",
    "shadowgw",
)
