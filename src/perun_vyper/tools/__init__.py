"""Operator and developer tools behind the `ape run` scripts: deployment, demo, gas report, benchmark."""
