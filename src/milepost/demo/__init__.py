"""The demo: a generated customer-churn scenario run through Milepost end to end."""

from milepost.demo.data import generate_customers

__all__ = ["generate_customers"]
