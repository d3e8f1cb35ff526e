"""The declarative side of Weir: `gateway.toml` parsed into frozen *Spec objects, and reconcile."""
