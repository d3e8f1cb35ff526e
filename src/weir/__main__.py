"""Run `gatewayctl` as `python -m weir`."""

from weir.cli.app import main

main()
