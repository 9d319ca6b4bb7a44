"""Evaluation of synthetic image sets against real ones: ``skingen evaluate`` (see ``evaluate.py``)."""
