"""`gatewayctl`: one typer sub-app per command group. Commands parse, call, and render."""
