"""The RSGI proxy: the hot path from a client request to an upstream and back.

Nothing here imports `weir.cli`, `weir.admin` or `weir.config`; the serve
command hands settings over as a `ServeSettings` object.
"""
