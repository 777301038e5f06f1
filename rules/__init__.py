"""The bundled rule files. Installed as ``miaopi.bundled_rules`` so that a plain install and the
Docker image carry the same rules as this folder; ``MIAOPI_RULES_DIR`` points elsewhere."""
