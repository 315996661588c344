"""Forecasting: the forecaster contract, classic methods and the evaluation harness."""
