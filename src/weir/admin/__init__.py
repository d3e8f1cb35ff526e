"""Operations shared by the CLI and by `gatewayctl apply`: validation first, then storage."""
