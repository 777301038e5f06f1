"""Evaluate rules: load the rule files, compile them for durable-rules, judge each criterion."""
