"""What operators see: Prometheus metrics (``metrics.py``) and JSON log lines with the
request id (``logs.py``)."""
